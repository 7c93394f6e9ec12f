"""Scale-out of orbitml.tiling.predict_many: 2 local dask workers against 1 on a multi-file batch.

Anchor: the same batch on a LocalCluster with 1 worker process (and, for reference, in process
without dask).  Both clusters are started before timing and the runs alternate; each worker has
one thread and one torch thread.  Prints the speed-up 1 worker / 2 workers.  On a machine with 2
shared cores the ideal is 2.0 and anything above 1 shows the files really run in parallel.

    .venv/bin/python benchmarks/bench_tiling_scaleout.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the worker processes

import numpy as np  # noqa: E402


def _one_thread() -> None:
    """Worker set-up before timing: one torch thread, orbitml and torch imported."""
    import torch

    import orbitml.tiling  # noqa: F401

    torch.set_num_threads(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--files", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    args = ap.parse_args()
    import rasterio
    from affine import Affine

    from orbitml.nn.tiny import TinyConvNet
    from orbitml.tiling import dask_client, predict_many

    nfiles = args.files or (6 if args.quick else 8)
    size = args.size or (640 if args.quick else 1536)
    model = TinyConvNet(1, 2, width=8, depth=3).eval()
    kw = dict(tile=256, stride=128, weights="gaussian", batch_size=4, progress=False)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="orbitml-scale-") as tmp:
        paths = []
        for i in range(nfiles):
            p = Path(tmp) / f"ctx_{i:02d}.tif"
            with rasterio.open(p, "w", driver="GTiff", height=size, width=size, count=1, dtype="uint8",
                               crs="+proj=eqc +R=3396190 +units=m +no_defs",
                               transform=Affine(6.0, 0, 0, 0, -6.0, 0)) as ds:
                ds.write(rng.integers(1, 255, (1, size, size), dtype=np.uint8))
            paths.append(p)
        _one_thread()
        reps = 2 if args.quick else 3
        t_in = []
        for _ in range(reps):
            t0 = time.perf_counter()
            predict_many(paths, model, Path(tmp) / "inproc", overwrite=True, **kw)
            t_in.append(time.perf_counter() - t0)
        t_in = min(t_in)
        runs: dict[int, list[float]] = {1: [], 2: []}
        # both clusters up at once, runs interleaved, so load swings on the shared machine hit both alike
        with dask_client(workers=1) as c1, dask_client(workers=2) as c2:  # as predict(workers=n) builds them
            clients = {1: c1, 2: c2}
            for c in clients.values():
                c.run(_one_thread)
            for _ in range(reps):
                for n, client in clients.items():
                    t0 = time.perf_counter()
                    recs = predict_many(paths, model, Path(tmp) / f"w{n}", scheduler=client.scheduler.address,
                                        overwrite=True, **kw)
                    runs[n].append(time.perf_counter() - t0)
                    assert all(r["status"] == "done" for r in recs)
        times = {n: min(v) for n, v in runs.items()}
        with rasterio.open(Path(tmp) / "w1" / "ctx_00_pred.tif") as a, \
                rasterio.open(Path(tmp) / "w2" / "ctx_00_pred.tif") as b:
            same = np.array_equal(a.read(), b.read(), equal_nan=True)
    mpx = nfiles * size * size / 1e6
    print(f"best of {reps} runs each; {nfiles} files of {size} x {size} uint8 ({mpx:.1f} Mpx), tile 256 "
          f"stride 128, TinyConvNet(1->2, width 8, depth 3); {os.cpu_count()} CPU cores (shared)")
    print(f"reference in process, no dask:   {t_in:7.2f} s  ({mpx / t_in:.2f} Mpx/s)")
    print(f"anchor  dask LocalCluster 1 worker:  {times[1]:7.2f} s  ({mpx / times[1]:.2f} Mpx/s)")
    print(f"orbitml dask LocalCluster 2 workers: {times[2]:7.2f} s  ({mpx / times[2]:.2f} Mpx/s)")
    print(f"speed-up 2 vs 1 workers = {times[1] / times[2]:.2f}x; outputs of 1 and 2 workers identical: {same}")


if __name__ == "__main__":
    main()
