"""Library-scale unmixing: 100,000 pixels x 224 bands against a 500-spectrum library (the real USGS splib07
library convolved to AVIRIS, ../shared/data/hsi/envi/s07_AV95_envi.sli; complete, distinct spectra).

* FCLS: orbitml's exact per-pixel active-set solver on every pixel, against scipy.optimize.nnls per pixel on
  ``[E.T; delta 1]`` (the sum-to-one row of Heinz & Chang, delta = 1e3 max|E|), timed on a seeded sample and
  extrapolated (the output says so); agreement on the sample.
* SUnSAL (non-negative lasso, lambda from the documented rule): orbitml's ADMM (vectorised over pixels) and its
  exact active-set solver (the default), against a plain per-pixel ADMM written here (same mu, same number of
  iterations as orbitml's ADMM, no relaxation), timed on a sample and extrapolated.

Peak memory is the process's maximum resident set size.  Everything single-threaded BLAS in this process.

    .venv/bin/python benchmarks/bench_unmix_library.py [--quick]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import nnls as scipy_nnls  # noqa: E402

from orbitml.spectra import read_library  # noqa: E402
from orbitml.unmix import fcls, kkt_violation, lambda_rule, prepare_library, sunsal  # noqa: E402

LIB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hsi" / "envi" / "s07_AV95_envi.sli"


def plain_admm(x: np.ndarray, E: np.ndarray, lam: float, mu: float, iters: int) -> np.ndarray:
    """Textbook SUnSAL ADMM for one pixel (non-negative lasso), fixed mu and iteration count."""
    p = E.shape[0]
    inv = np.linalg.inv(E @ E.T + mu * np.eye(p))
    b = E @ x
    u = np.maximum(inv @ b, 0)
    d = np.zeros(p)
    for _ in range(iters):
        a = inv @ (b + mu * (u + d))
        u = np.maximum(a - d - lam / mu, 0)
        d -= a - u
    return u


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="5,000 pixels, smaller reference samples")
    args = ap.parse_args()
    n = 5_000 if args.quick else 100_000
    n_ref, n_admm, n_plain = (50, 500, 5) if args.quick else (300, 2000, 20)
    if not LIB.exists():
        raise SystemExit(f"needs the USGS library at {LIB}")
    lib = read_library(LIB)
    lib = prepare_library(lib.take(np.flatnonzero(np.isfinite(lib.spectra).all(axis=1))), drop_duplicates=True)
    rng = np.random.default_rng(0)
    lib = lib.take(np.sort(rng.choice(len(lib), 500, replace=False)))
    E = lib.spectra.astype(np.float64)
    p, b = E.shape
    k = rng.integers(2, 6, n)  # 2-5 spectra per pixel, Dirichlet abundances, 40 dB-ish noise
    A = np.zeros((n, p))
    for i in range(n):
        A[i, rng.choice(p, k[i], replace=False)] = rng.dirichlet(np.ones(k[i]))
    X = (A @ E + rng.normal(0, 0.002, (n, b))).astype(np.float32)
    print(f"scene: {n} pixels x {b} bands, library {p} USGS spectra ({LIB.name}); peak RSS {peak_mb():.0f} MB")

    fcls(X[:200], E)  # compile / warm up
    t0 = time.perf_counter()
    Af = fcls(X, E)
    t_f = time.perf_counter() - t0
    kkt = kkt_violation(X[:20000], E, Af[:20000], "fcls")
    print(f"orbitml fcls: {t_f:.1f} s = {n / t_f:,.0f} pixels/s; worst KKT violation {max(kkt.values()):.1e} "
          f"(first 20,000 pixels); {np.mean((Af > 0).sum(1)):.1f} non-zero abundances per pixel")
    sub = np.sort(rng.choice(n, n_ref, replace=False))
    delta = 1e3 * float(np.abs(E).max())
    M = np.vstack([E.T, np.full(p, delta)])
    t0 = time.perf_counter()
    R = np.array([scipy_nnls(M, np.append(X[i].astype(np.float64), delta), maxiter=50 * p)[0] for i in sub])
    t_r = (time.perf_counter() - t0) / n_ref
    Xs = X[sub].astype(np.float64)
    f_o, f_r = np.sum((Xs - Af[sub] @ E) ** 2, 1), np.sum((Xs - R @ E) ** 2, 1)
    print(f"scipy nnls + sum-to-one row, per pixel: {t_r * 1e3:.2f} ms/pixel on {n_ref} pixels -> {t_r * n:.0f} s "
          f"extrapolated to {n} pixels ({1 / t_r:,.0f} pixels/s)")
    print(f"on the sample: residual ||x - aE||^2 orbitml vs scipy: max relative difference "
          f"{np.max(np.abs(f_o - f_r) / f_r):.1e} (orbitml lower in {np.mean(f_o <= f_r + 1e-12) * 100:.0f} % of "
          f"pixels); max |a difference| {np.abs(R - Af[sub]).max():.1e} (500 collinear spectra on 224 bands: "
          "the optimum is not unique)")
    print(f"ratio FCLS scipy / orbitml: {t_r * n / t_f:.1f}x")

    lam = lambda_rule(X[:20000], E).lam
    sunsal(X[:200], E, lam)
    t0 = time.perf_counter()
    As = sunsal(X, E, lam)
    t_s = time.perf_counter() - t0
    print(f"orbitml sunsal (exact active-set, lambda {lam:.3g} by the rule): {t_s:.1f} s = {n / t_s:,.0f} pixels/s")
    mu = 1e-3 * np.linalg.norm(E, 2) ** 2  # orbitml sunsal default mu (relative to ||E||^2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t0 = time.perf_counter()
        Aa, info = sunsal(X[:n_admm], E, lam, solver="admm", return_info=True, max_iter=500)
        t_a = (time.perf_counter() - t0) / n_admm
    print(f"orbitml sunsal ADMM ({info.iterations} iterations at most, {info.converged} of {n_admm} converged): "
          f"{t_a * 1e3:.2f} ms/pixel on {n_admm} pixels = {1 / t_a:,.0f} pixels/s")
    t0 = time.perf_counter()
    P = np.array([plain_admm(X[i].astype(np.float64), E, lam, mu, info.iterations) for i in range(n_plain)])
    t_p = (time.perf_counter() - t0) / n_plain
    obj = lambda Z, Xs: 0.5 * np.sum((Xs - Z @ E) ** 2, 1) + lam * Z.sum(1)  # noqa: E731
    gap_plain = float(np.max(obj(P, X[:n_plain]) / obj(As[:n_plain], X[:n_plain]) - 1))
    gap_admm = float(np.max(obj(Aa, X[:n_admm]) / obj(As[:n_admm], X[:n_admm]) - 1))
    print(f"plain per-pixel ADMM ({info.iterations} iterations): {t_p * 1e3:.1f} ms/pixel on {n_plain} pixels = "
          f"{1 / t_p:,.1f} pixels/s -> {t_p * n:.0f} s extrapolated")
    print(f"objective above the exact optimum: orbitml ADMM {gap_admm:.1e}, plain ADMM {gap_plain:.1e}")
    print(f"ratio SUnSAL plain ADMM / orbitml ADMM: {t_p / t_a:.1f}x; plain ADMM / orbitml exact: "
          f"{t_p * n / t_s:.1f}x")
    print(f"peak RSS {peak_mb():.0f} MB (abundances alone: {n * p * 8 / 2**20:.0f} MB float64)")
    print("note: shared 2-core machine; BLAS single-threaded; orbitml's compiled solver uses numba threads")


if __name__ == "__main__":
    main()
