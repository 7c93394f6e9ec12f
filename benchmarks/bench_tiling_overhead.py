"""Stitching overhead of orbitml.tiling.predict against the bare forward pass over the same tiles.

Anchor: the model's forward pass alone over exactly the tiles predict feeds it (same tile size,
stride, batch size and reflection-padded windows, cut beforehand and kept in memory).
Claim: predict with s=2 Gaussian weights costs at most 10% more than the anchor.

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller image, fewer repeats")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
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

    def tiled() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        predict(make_scene(img), model, tile=tile, stride=stride, weights="gaussian", batch_size=args.batch,
                progress=False)
        return time.perf_counter() - t0, time.process_time() - c0

    anchor(), tiled()  # warm-up
    ta, tp = [], []
    for _ in range(reps):  # interleaved so machine load hits both alike
        ta.append(anchor())
        tp.append(tiled())
    aw, ac = min(t[0] for t in ta), min(t[1] for t in ta)
    pw, pc = min(t[0] for t in tp), min(t[1] for t in tp)
    print(f"image {size}x{size} float32, tile {tile}, stride {stride} (s=2), gaussian, batch {args.batch}, "
          f"{len(g)} tiles, TinyConvNet width {args.width} depth 3, 1 torch thread, best of {reps} interleaved")
    print(f"anchor  bare forward pass over the same tiles: CPU {ac:7.3f} s  wall {aw:7.3f} s  "
          f"({size * size / aw / 1e6:.2f} Mpx/s wall)")
    print(f"orbitml predict (read, pad, forward, blend):   CPU {pc:7.3f} s  wall {pw:7.3f} s  "
          f"({size * size / pw / 1e6:.2f} Mpx/s wall)")
    print(f"ratio predict/anchor (CPU time) = {pc / ac:.3f} -> stitching overhead {100 * (pc / ac - 1):+.1f}% "
          f"(target <= +10%); wall-time ratio {pw / aw:.3f} (noisy on a shared machine)")


if __name__ == "__main__":
    main()
