"""Library augmentation: spectra per second per class, against a plain per-spectrum reference.

orbitml's generators transform a whole class block in one numpy operation each.  The reference
(written here) does the same five steps for one spectrum at a time, as a Python loop would
(offset, scaling, tilt, a Dirichlet mixture with two other classes, per-band SNR noise).
Library: the real USGS splib07 AVIRIS-1995 library (224 bands) when ../shared/data is present,
else 20 simulated mineral spectra.

    .venv/bin/python benchmarks/bench_unmix_augment.py [--quick]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from orbitml.spectra.augment import augment_library, default_augmenter  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hsi" / "envi" / "s07_AV95_envi.sli"


def load_library(n_classes: int):
    if SHARED.exists():
        from orbitml.spectra import read_library

        lib = read_library(SHARED)
        ok = np.isfinite(lib.spectra).all(axis=1) & (lib.spectra.min(axis=1) > 0)
        lib = lib.take(np.flatnonzero(ok)[:n_classes])
        return lib.spectra, lib.wavelength, f"USGS splib07 AV95 ({SHARED.name})"
    from orbitml.simulate import crism_like_wavelengths, library_from_families

    wl = crism_like_wavelengths()
    lib = library_from_families(wavelength=wl)
    return lib.spectra[:n_classes], wl, "simulated mineral families"


def reference(S: np.ndarray, n: int, wl: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = 2 * (wl - wl.min()) / (wl.max() - wl.min()) - 1
    out = np.empty((S.shape[0] * n, S.shape[1]))
    k = 0
    for i, s in enumerate(S):
        others = np.delete(S, i, axis=0)
        for _ in range(n):
            f = rng.uniform(0.7, 1.0)
            w = rng.dirichlet(np.ones(2))
            pick = rng.integers(0, others.shape[0], 2)
            x = f * s + (1 - f) * (w @ others[pick])
            x = x + rng.uniform(-0.02, 0.02)
            x = x * rng.uniform(0.85, 1.15)
            x = x * (1 + rng.uniform(-0.05, 0.05) * t)
            out[k] = x + rng.standard_normal(x.size) * np.abs(x) / 200.0
            k += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_classes = 5 if args.quick else 20
    n = 10_000
    S, wl, name = load_library(n_classes)
    print(f"library: {name}, {S.shape[0]} classes x {S.shape[1]} bands; {n} spectra per class")
    augment_library(S[:2], 100, default_augmenter(), wavelength=wl, random_state=0)  # warm up
    ts = []
    for rep in range(3):
        t0 = time.perf_counter()
        X, y = augment_library(S, n, default_augmenter(), wavelength=wl, random_state=rep)
        ts.append(time.perf_counter() - t0)
    t = min(ts)
    per_class = t / S.shape[0]
    print(f"orbitml: {X.shape[0]} spectra in {t:.3f} s = {per_class * 1e3:.1f} ms per class of {n} "
          f"({n / per_class:,.0f} spectra/s); target: {n} per class in well under 1 s")
    m = 300 if args.quick else 1000
    t0 = time.perf_counter()
    reference(S, m, wl, 0)
    t_ref = (time.perf_counter() - t0) / (S.shape[0] * m) * n
    print(f"per-spectrum loop reference: {t_ref * 1e3:.0f} ms per class of {n} (timed on {m} per class, "
          f"extrapolated); ratio {t_ref / per_class:.0f}x")
    print("note: shared 2-core machine, single-threaded")


if __name__ == "__main__":
    main()
