"""pan2spec prediction of a CTX strip with Unet / EfficientNet-B0 at s = 2 (Gaussian weights), on CPU.

Claims (issue 11): throughput in Mpx/s; peak memory bounded (it must not grow with the strip length:
two lengths are measured, each in its own process); time relative to the bare forward pass over the
same tiles (target <= +10%).  The anchor is timed inside the same run: every call of the network
(normalisation + Unet forward, what a bare loop over the tiles would run) is timed while
``orbitml.tiling.predict`` reads the GeoTIFF strip, reflect-pads, batches, blends and writes; the
end-to-end product path (``predict_ctx``: statistics pass, GeoTIFF split, browse PNG) is timed on the
shorter strip too, its network calls timed the same way.

The issue's strip is 5,000 x 20,000 px; with random-weight EfficientNet-B0 on this shared 2-core
CPU that is hours, so the default measures 1,024-row strips of 2,048 and 4,096 columns (--quick:
512 x 1,024 and 512 x 2,048) and says so.  Throughput per pixel does not depend on the strip size
beyond the edge tiles.

    .venv/bin/python benchmarks/bench_pan2spec.py [--quick] [--height H --lengths L1 L2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")


def _child(height: int, length: int, tile: int, batch: int, threads: int, with_product: bool) -> dict:
    import numpy as np
    import rasterio
    import torch

    from orbitml.nn.pan2spec import Pan2SpecNet
    from orbitml.pan2spec.predict import Pan2SpecPredictor
    from orbitml.simulate.pan2spec import MARS_EQC_WKT
    from orbitml.tiling import predict

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="bench_p2s_"))
    src = tmp / "ctx_strip.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(src, "w", driver="GTiff", height=height, width=length, count=1, dtype="float32",
                       crs=MARS_EQC_WKT, transform=rasterio.transform.from_origin(0, 0, 6, 6), tiled=True,
                       blockxsize=256, blockysize=256) as ds:
        for r0 in range(0, height, 256):
            h = min(256, height - r0)
            ds.write(rng.random((1, h, length), dtype=np.float32) * 0.2 + 0.1,
                     window=rasterio.windows.Window(0, r0, length, h))
    net = Pan2SpecNet("Unet", "efficientnet-b0", 1, 3).eval()
    fn = Pan2SpecPredictor(net, "image", [{"mean": 0.2, "std": 0.06}]).eval()
    inside = [0.0]

    Timed = _timed_class(torch, inside)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    predict(str(src), Timed(fn), tile=tile, stride=tile // 2, weights="gaussian", batch_size=batch,
            fill_value=np.nan, out=tmp / "pred.tif", out_bands=3, progress=False)
    wall = time.perf_counter() - t0
    model_s = inside[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    product = None
    if with_product:
        from orbitml.pan2spec.predict import Model, predict_ctx

        class TimedNet(_timed_class(torch, inside)):  # predict_ctx reads the network's task and bands
            task, n_bands = net.task, net.n_bands

        card = {"bands_nm": [592.0, 533.0, 442.0], "task": "regression", "in_channels": 1, "patch_size": tile,
                "normalisation": {"mode": "image", "output_units": "image-wise z-score", "input_stats": None,
                                  "target_stats": None}}
        inside[0] = 0.0
        t0 = time.perf_counter()
        predict_ctx(src, Model(TimedNet(net), card, tmp / "bench.safetensors"), tmp / "product", stride_div=2,
                    batch_size=batch, progress=False)
        product = {"wall_s": time.perf_counter() - t0, "net_s": inside[0]}
        for f in (tmp / "product").iterdir():
            f.unlink()
        (tmp / "product").rmdir()
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return {"height": height, "length": length, "mpx": height * length / 1e6, "wall_s": wall,
            "model_s": model_s, "mpx_per_s": height * length / 1e6 / wall, "overhead": wall / model_s - 1,
            "peak_rss_mb": rss / 1024, "rss_before_predict_mb": rss0 / 1024, "product": product}


def _timed_class(torch, inside: list[float]):
    """A module wrapper that adds the seconds spent inside the wrapped network's forward to ``inside[0]``."""

    class Timed(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            t0 = time.perf_counter()
            y = self.m(x)
            inside[0] += time.perf_counter() - t0
            return y

    return Timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--lengths", type=int, nargs=2, default=None)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", type=int, nargs=2, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--product", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], args.tile, args.batch, args.threads, args.product)))
        return
    height = args.height or (512 if args.quick else 1024)
    lengths = args.lengths or ((1024, 2048) if args.quick else (2048, 4096))
    rows = []
    for k, length in enumerate(lengths):
        cmd = [sys.executable, __file__, "--child", str(height), str(length), "--tile", str(args.tile),
               "--batch", str(args.batch), "--threads", str(args.threads)] + (["--product"] if k == 0 else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
    print(f"Unet/EfficientNet-B0 (random weights), tile {args.tile}, s=2 Gaussian, batch {args.batch}, "
          f"{args.threads} torch threads, CPU; strips of {height} rows (the issue's 5000 x 20000 is too slow here)")
    print(f"{'strip':>14s} {'Mpx':>6s} {'wall s':>8s} {'model s':>8s} {'Mpx/s':>7s} {'overhead':>9s} {'peak MB':>8s}")
    for r in rows:
        print(f"{r['height']:>6d} x {r['length']:<6d} {r['mpx']:6.2f} {r['wall_s']:8.1f} {r['model_s']:8.1f} "
              f"{r['mpx_per_s']:7.4f} {100 * r['overhead']:+8.1f}% {r['peak_rss_mb']:8.0f}")
    a, b = rows
    print(f"peak memory ratio (length x{b['length'] / a['length']:.1f}): {b['peak_rss_mb'] / a['peak_rss_mb']:.2f} "
          f"(bounded: ~1 means it does not grow with the strip)")
    print(f"time / bare forward pass: {1 + b['overhead']:.3f} (target <= 1.10)")
    p = a["product"]
    print(f"whole product path (predict_ctx: statistics pass, tiles, GeoTIFF split, browse PNG) on "
          f"{a['height']} x {a['length']}: {p['wall_s']:.1f} s, network {p['net_s']:.1f} s, "
          f"ratio {p['wall_s'] / p['net_s']:.3f}")


if __name__ == "__main__":
    main()
