"""Peak memory of orbitml.tiling.predict streaming a large uint8 GeoTIFF through a small conv model.

A 20,000 x 20,000 uint8 GeoTIFF (400 Mpx; ``--quick``: 4,000 x 4,000) is generated in a temporary
folder, then a child process streams it through ``TinyConvNet`` (tile 512, stride 256, Gaussian
weights) into a float32 GeoTIFF; the parent reads the child's peak RSS (``getrusage``).
Anchors in the same run: the peak RSS of a child that only imports the same libraries and builds
the model (the fixed cost), and the sizes of the input and output rasters (what a whole-image
approach would have to hold).  Claim: peak RSS <= 1.5 GB at full size.  Mpx/s is printed.

    .venv/bin/python benchmarks/bench_tiling_memory.py [--quick] [--size N]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import os, sys, time, json
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np, torch
torch.set_num_threads(1)
from orbitml.nn.tiny import TinyConvNet
from orbitml.tiling import predict
mode, src, dst, tile = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = TinyConvNet(1, 1, width=4, depth=2).eval()
t0 = time.perf_counter()
if mode == "run":
    predict(src, model, tile=tile, stride=tile // 2, weights="gaussian", batch_size=4, out=dst,
            progress=False, compress=None)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def make_input(path: Path, size: int) -> None:
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS

    crs = CRS.from_proj4("+proj=eqc +lat_ts=0 +lon_0=0 +R=3396190 +units=m +no_defs")
    prof = dict(driver="GTiff", height=size, width=size, count=1, dtype="uint8", tiled=True, blockxsize=256,
                blockysize=256, compress="deflate", crs=crs, transform=Affine(0.25, 0, 0, 0, -0.25, 0), nodata=0)
    yy = np.arange(256)[:, None]
    xx = np.arange(size)[None, :]
    with rasterio.open(path, "w", **prof) as ds:
        for r in range(0, size, 256):
            h = min(256, size - r)
            band = (((xx * 7 + (yy[:h] + r) * 3) % 251) + 1).astype(np.uint8)  # cheap texture, no nodata
            ds.write(band[None], window=rasterio.windows.Window(0, r, size, h))


def run_child(mode: str, src: Path, dst: Path, tile: int) -> tuple[float, float]:
    """(peak RSS in MB, seconds inside the child) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(src), str(dst), str(tile)], check=True,
                         capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    import json

    secs = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
    # ru_maxrss of children is the max over all waited-for children: run the small child first
    return max(peak, before) / 1024.0, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--tile", type=int, default=512)
    args = ap.parse_args()
    size = args.size or (4000 if args.quick else 20000)
    with tempfile.TemporaryDirectory(prefix="orbitml-bench-") as tmp:
        src, dst = Path(tmp) / "in.tif", Path(tmp) / "out.tif"
        t0 = time.perf_counter()
        make_input(src, size)
        gen = time.perf_counter() - t0
        base_rss, _ = run_child("idle", src, dst, args.tile)
        peak_rss, secs = run_child("run", src, dst, args.tile)
        out_mb = dst.stat().st_size / 1e6
    mpx = size * size / 1e6
    print(f"input {size} x {size} uint8 GeoTIFF ({mpx:.0f} Mpx, {mpx:.0f} MB raw; generated in {gen:.1f} s), "
          f"tile {args.tile}, stride {args.tile // 2}, gaussian, TinyConvNet(width 4, depth 2), 1 thread")
    print(f"anchor  child importing torch+orbitml, model built, no work: peak RSS {base_rss:8.1f} MB")
    print(f"anchor  whole-image arrays: input {mpx:.0f} MB uint8, output {4 * mpx:.0f} MB float32 "
          f"(+{16 * mpx:.0f} MB float64 sum and weight arrays for a naive in-memory stitch)")
    print(f"orbitml predict streaming to GeoTIFF ({out_mb:.0f} MB written): peak RSS {peak_rss:8.1f} MB, "
          f"{secs:.1f} s, {mpx / secs:.2f} Mpx/s")
    print(f"ratio peak RSS / idle child = {peak_rss / base_rss:.2f}; extra {peak_rss - base_rss:.0f} MB for "
          f"{mpx:.0f} Mpx; peak RSS {'<=' if peak_rss <= 1536 else '>'} 1.5 GB target")


if __name__ == "__main__":
    main()
