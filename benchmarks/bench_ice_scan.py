"""Scan speed and memory of `orbitml ice scan` on large images streamed from disk.

* Mpx/s of ``scan_image`` (1024 px chunks, half-chunk overlap, defect repair, 1024 -> 256 px input,
  heat map and products written) on a tiled GeoTIFF made by repeating a simulated HiRISE-like tile
  (full: 20,000 x 40,000 px; --quick: 4,000 x 8,000), each size in a fresh process;
* peak RSS at two image sizes (the larger has 4x the pixels): memory must not grow with the image;
* anchor: the bare forward passes of the same network over the same number of chunks (random
  inputs of the same shape, same batch size), in the same process: ratio scan time / forward time;
* 2 dask workers against 1 dask worker on a batch of 4 images (``scan_many``, cluster start-up
  and the model load in each worker included).

The network is the small Xception with narrow widths (stem 16, blocks 32/64, head 64), untrained
(speed does not depend on the weights).

    python benchmarks/bench_ice_scan.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHUNK, INPUT = 1024, 256
MODEL = {"stem": 16, "blocks": (32, 64), "head": 64}


def make_image(path: Path, h: int, w: int, seed: int = 0) -> None:
    """A tiled GeoTIFF of h x w px written strip by strip from one simulated 2048 px tile."""
    import numpy as np
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from orbitml.simulate.hirise import MARS_EQC_WKT, simulate_hirise

    tile, _ = simulate_hirise((2048, 2048), n_ice=20, n_dust=20, n_hot=400, n_lines=40, margin=(0, 0), seed=seed)
    prof = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": "uint8", "nodata": 0, "tiled": True,
            "blockxsize": 256, "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER",
            "crs": CRS.from_wkt(MARS_EQC_WKT), "transform": from_origin(0, 0, 0.25, 0.25)}
    reps = -(-w // 2048)
    with rasterio.open(path, "w", **prof) as ds:
        for r0 in range(0, h, 2048):
            n = min(2048, h - r0)
            strip = np.tile(tile[:n], (1, reps))[:, :w]
            ds.write(strip[None], window=rasterio.windows.Window(0, r0, w, n))


def save_model(path: Path) -> None:
    import torch

    from orbitml.ice.prep import ChunkSettings
    from orbitml.nn.ice_xception import build_model
    from orbitml.nn.weights import save_weights

    torch.manual_seed(0)
    net = build_model("ice_xception", **MODEL)
    card = {"name": "bench", "architecture": "ice_xception", "model_kwargs": {**MODEL, "blocks": list(MODEL["blocks"])},
            "threshold": 0.6, "chunking": ChunkSettings(chunk=CHUNK, input_size=INPUT).to_card(),
            "training_data": {"simulated": True, "simulated_description": "nothing (untrained, speed benchmark)"}}
    save_weights(net, path, card)


def child_scan(image: str, model: str, out: str) -> None:
    """Run in a fresh process: scan one image, then the bare forward anchor; print JSON with peak RSS."""
    import resource

    import numpy as np
    import torch

    from orbitml.ice.scan import scan_image
    from orbitml.ice.train import load_model
    from orbitml.tiling.predict import tune_malloc

    tune_malloc()
    torch.set_num_threads(1)
    net, card, st = load_model(model)
    t0 = time.perf_counter()
    s = scan_image(image, net, card, st, out, batch_size=8)
    t_scan = time.perf_counter() - t0
    rss_scan = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = s["chunks_kept"]
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(8, 1, INPUT, INPUT)).astype(np.float32))
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, n, 8):
            torch.sigmoid(net(x[: min(8, n - i)]))
    t_fwd = time.perf_counter() - t0
    print(json.dumps({"pixels": s["height"] * s["width"], "chunks": n, "scan_s": t_scan, "forward_s": t_fwd,
                      "peak_rss_mb": rss_scan, "hot_pixels": s["hot_pixels"], "lines": s["line_defects"]}))


def run_child(image: Path, model: Path, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, __file__, "--child", str(image), str(model), str(out)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-batch", action="store_true", help="skip the 1-vs-2 dask worker comparison")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child_scan(*a.child)
        return
    big = (4000, 8000) if a.quick else (20000, 40000)
    small = (big[0] // 2, big[1] // 2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / "bench.safetensors"
        save_model(model)
        rows = {}
        for name, (h, w) in (("small", small), ("large", big)):
            img = tmp / f"{name}.tif"
            t0 = time.perf_counter()
            make_image(img, h, w)
            r = run_child(img, model, tmp / f"out_{name}")
            r["write_s"] = time.perf_counter() - t0 - r["scan_s"] - r["forward_s"]
            rows[name] = r
            print(f"{name}: {h} x {w} px, {r['chunks']} chunks: scan {r['scan_s']:.1f} s = "
                  f"{r['pixels'] / 1e6 / r['scan_s']:.2f} Mpx/s; bare forward {r['forward_s']:.1f} s; "
                  f"scan / forward {r['scan_s'] / r['forward_s']:.2f}; peak RSS {r['peak_rss_mb']:.0f} MB")
        growth = rows["large"]["peak_rss_mb"] / rows["small"]["peak_rss_mb"]
        print(f"peak RSS large / small: {growth:.2f} for {rows['large']['pixels'] / rows['small']['pixels']:.0f}x "
              "the pixels (flat memory: ~1)")
        if a.no_batch:
            print(json.dumps({"rows": rows, "rss_growth": growth}))
            return
        # 2 dask workers against 1 on 4 images of the small size
        from orbitml.ice.scan import scan_many

        imgs = []
        for k in range(4):
            p = tmp / f"batch{k}.tif"
            os.link(tmp / "small.tif", p)
            imgs.append(p)
        times, probs = {}, {}
        for workers in (1, 2):
            t0 = time.perf_counter()
            recs = scan_many(imgs, model, tmp / f"batch_out{workers}", workers=workers, batch_size=8, overwrite=True,
                             use_dask=True)
            times[workers] = time.perf_counter() - t0
            assert all(r["status"] == "done" for r in recs), recs
            probs[workers] = sorted((r["name"], r["max_prob"], r["n_positive"]) for r in recs)
        same = probs[1] == probs[2]
        print(f"batch of 4 x {small[0]} x {small[1]} (dask LocalCluster, start-up included): "
              f"1 worker {times[1]:.1f} s, 2 workers {times[2]:.1f} s, "
              f"speed-up {times[1] / times[2]:.2f} (os.cpu_count() = {os.cpu_count()}); identical results: {same}")
        print(json.dumps({"rows": rows, "rss_growth": growth, "workers": times}))


if __name__ == "__main__":
    main()
