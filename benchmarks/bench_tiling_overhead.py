"""Stitching overhead of orbitml.tiling.predict against the bare forward pass over the same tiles.

Anchor: the model's forward pass alone over exactly the tiles predict feeds it (same tile size,
stride, batch size and reflection-padded windows, cut beforehand and kept in memory), timed
(a) as separate runs interleaved with predict runs and (b) inside each predict run, by timing the
model calls themselves.  (b) is immune to the load swings of a shared machine between runs and is
the figure for the claim: predict with s=2 Gaussian weights costs at most 10% more than its model
calls (read, reflect-pad, batch, blend, nodata, finalize included).

    .venv/bin/python benchmarks/bench_tiling_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from orbitml.nn.tiny import TinyConvNet  # noqa: E402
from orbitml.scene import make_scene  # noqa: E402
from orbitml.tiling import grid, predict, reflect_index  # noqa: E402
from orbitml.tiling.stitch import make_runner  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller image, fewer repeats")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4,
                    help="tiles per model call (at 8, 16 ch x 256^2 activations exceed glibc's 32 MiB mmap "
                         "cap and page-fault at every call, in both paths)")
    ap.add_argument("--width", type=int, default=16, help="channels of the conv model")
    args = ap.parse_args()
    torch.set_num_threads(1)
    size = args.size or (640 if args.quick else 2048)
    reps = 4 if args.quick else 5
    tile, stride = args.tile, args.tile // 2
    rng = np.random.default_rng(0)
    img = rng.random((1, size, size), dtype=np.float32)
    model = TinyConvNet(1, 1, width=args.width, depth=3).eval()

    # the anchor's input: the same reflection-padded tiles predict cuts, batched the same way (per tile row)
    g = grid(size, size, tile, stride)
    cols = reflect_index(np.arange(g.col_offsets[0], g.col_offsets[-1] + tile), size)
    batches = []
    for y0 in g.row_offsets:
        strip = img[:, reflect_index(np.arange(y0, y0 + tile), size)][:, :, cols]
        tiles = [strip[:, :, x0 - g.col_offsets[0]: x0 - g.col_offsets[0] + tile] for x0 in g.col_offsets]
        for b in range(0, len(tiles), args.batch):
            batches.append(torch.from_numpy(np.stack(tiles[b: b + args.batch])))

    def anchor() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            for x in batches:
                model(x).numpy()
        return time.perf_counter() - t0, time.process_time() - c0

    runner = make_runner(model)  # what predict does with a module: numpy batch -> tensor -> numpy
    inside = [0.0, 0.0]

    def timed_model(batch):
        t0, c0 = time.perf_counter(), time.process_time()
        y = runner(batch)
        inside[0] += time.perf_counter() - t0
        inside[1] += time.process_time() - c0
        return y

    def tiled() -> tuple[float, float, float, float]:
        inside[:] = [0.0, 0.0]
        t0, c0 = time.perf_counter(), time.process_time()
        predict(make_scene(img), timed_model, tile=tile, stride=stride, weights="gaussian", batch_size=args.batch,
                progress=False)
        return time.perf_counter() - t0, time.process_time() - c0, inside[0], inside[1]

    anchor(), tiled()  # warm-up
    ta, tp = [], []
    for _ in range(reps):  # interleaved so machine load hits both alike
        ta.append(anchor())
        tp.append(tiled())
    aw, ac = min(t[0] for t in ta), min(t[1] for t in ta)
    pw, pc = min(t[0] for t in tp), min(t[1] for t in tp)
    # overhead inside each predict run: total minus the time spent in the model calls of that same run
    ov = sorted((t[1] - t[3]) / t[3] for t in tp)
    ovw = sorted((t[0] - t[2]) / t[2] for t in tp)
    print(f"image {size}x{size} float32, tile {tile}, stride {stride} (s=2), gaussian, batch {args.batch}, "
          f"{len(g)} tiles, TinyConvNet width {args.width} depth 3, 1 torch thread, best of {reps} interleaved")
    print(f"anchor  bare forward pass over the same tiles: CPU {ac:7.3f} s  wall {aw:7.3f} s  "
          f"({size * size / aw / 1e6:.2f} Mpx/s wall)")
    print(f"orbitml predict (read, pad, forward, blend):   CPU {pc:7.3f} s  wall {pw:7.3f} s  "
          f"({size * size / pw / 1e6:.2f} Mpx/s wall)")
    print(f"ratio predict/anchor runs (CPU time) = {pc / ac:.3f}, wall {pw / aw:.3f} (separate runs: noisy on a "
          "shared machine)")
    print(f"within each predict run, (total - model calls) / model calls: CPU median {100 * ov[len(ov) // 2]:+.1f}% "
          f"(range {100 * ov[0]:+.1f}..{100 * ov[-1]:+.1f}%), wall median {100 * ovw[len(ovw) // 2]:+.1f}% "
          "-> stitching overhead (target <= +10%)")


if __name__ == "__main__":
    main()
