"""Throughput of the whole summary-parameter table on a CRISM MTRDR-sized cube.

Claim: the vectorised primitives compute the full Viviano-Beck 2014 table (76 parameters) far
faster than evaluating the same formulas one spectrum at a time (the way scalar/per-pixel tools
work).  Anchor: the same code called per pixel (a Python loop over spectra), timed on a sample of
pixels in the same run; the ratio is printed.

    .venv/bin/python benchmarks/bench_crism_params.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a 100 x 100 cube instead of 420 x 320")
    args = ap.parse_args()
    from orbitml.crism.params import compute_parameters

    h, w = (100, 100) if args.quick else (420, 320)
    wl = np.concatenate([np.arange(436.13, 1023.0, 6.52), np.arange(1001.0, 3897.0, 6.55)])
    rng = np.random.default_rng(0)
    cont = 0.2 + 0.02 * (wl - 1000) / 1000
    X = (cont[None, :] * (1 - 0.1 * rng.random((h * w, 1)) * np.exp(-((wl - 2300) / 40) ** 2))
         + rng.normal(0, 0.002, (h * w, wl.size)))
    warnings.simplefilter("ignore", RuntimeWarning)

    t0 = time.perf_counter()
    res = compute_parameters(X, wl, warn=False)
    t_vec = time.perf_counter() - t0
    n_sample = 50 if args.quick else 200
    idx = rng.choice(X.shape[0], n_sample, replace=False)
    t0 = time.perf_counter()
    loop = np.stack([compute_parameters(X[i:i + 1], wl, warn=False).values[0] for i in idx])
    t_loop = (time.perf_counter() - t0) / n_sample * X.shape[0]
    assert np.allclose(loop, res.values[idx], equal_nan=True, rtol=1e-9, atol=1e-12)
    px = X.shape[0]
    print(f"cube {h} x {w} x {wl.size} bands, {len(res.names)} parameters")
    print(f"vectorised table : {t_vec:8.3f} s  ({px / t_vec:,.0f} pixels/s)")
    print(f"anchor per-pixel : {t_loop:8.3f} s  ({px / t_loop:,.0f} pixels/s, extrapolated from {n_sample} pixels)")
    print(f"speed-up         : {t_loop / t_vec:8.1f} x")


if __name__ == "__main__":
    main()
