"""FCLS on 100,000 pixels x 200 bands x 6 endmembers: orbitml's batched exact active-set solver
against two per-pixel scipy references written here (pysptools, the issue's anchor, is not
installable: it is abandoned and needs cvxopt; its FCLS solves one quadratic program per pixel):

* ``nnls``: scipy.optimize.nnls on ``[E.T; delta 1]`` with ``delta`` appended to the pixel (the
  sum-to-one row of Heinz & Chang), one call per pixel: the fastest per-pixel way, approximate
  (sum-to-one only up to 1/delta);
* ``slsqp``: one exact quadratic program per pixel (scipy.optimize.minimize, SLSQP, analytic
  gradient), the closest stand-in for pysptools' one-QP-per-pixel FCLS.

References are timed on seeded subsets and extrapolated to the whole scene (the output says so);
everything runs single-threaded in this process.  Agreement is checked on the subsets
(max |difference|), and the KKT conditions of orbitml's answer on the whole scene.

    .venv/bin/python benchmarks/bench_unmix_fcls.py [--quick]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import nnls as scipy_nnls  # noqa: E402

from orbitml.simulate import simulate_scene  # noqa: E402
from orbitml.unmix import fcls, kkt_violation  # noqa: E402


def reference_fcls(X: np.ndarray, E: np.ndarray, delta: float) -> np.ndarray:
    """Per-pixel FCLS: NNLS on [E.T; delta 1] with the data row appended delta (sum-to-one row trick)."""
    M = np.vstack([E.T, np.full((1, E.shape[0]), delta)])
    out = np.empty((X.shape[0], E.shape[0]))
    for i, x in enumerate(X):
        out[i] = scipy_nnls(M, np.append(x, delta))[0]
    return out


def reference_slsqp(X: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Per-pixel exact FCLS as a quadratic program (SLSQP with the analytic gradient)."""
    from scipy.optimize import minimize

    p = E.shape[0]
    G = E @ E.T
    out = np.empty((X.shape[0], p))
    cons = [{"type": "eq", "fun": lambda a: a.sum() - 1.0, "jac": lambda a: np.ones_like(a)}]
    for i, x in enumerate(X):
        b = E @ x
        res = minimize(lambda a, b=b: 0.5 * a @ G @ a - a @ b, np.full(p, 1.0 / p),
                       jac=lambda a, b=b: G @ a - b, method="SLSQP", bounds=[(0.0, None)] * p,
                       constraints=cons, options={"ftol": 1e-15, "maxiter": 200})
        out[i] = res.x
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller reference subset, fewer repeats")
    args = ap.parse_args()
    n_ref = 2000 if args.quick else 10000
    repeats = 3 if args.quick else 5

    wl = np.linspace(1000, 2600, 200)
    sim = simulate_scene(shape=(250, 400), wavelength=wl, n_endmembers=6, snr_db=30.0, seed=0, temperature=0.3)
    X = sim.scene.values.reshape(200, -1).T  # (100000, 200) float32, as read from a cube
    E = sim.endmembers
    print(f"scene: {X.shape[0]} pixels x {X.shape[1]} bands x {E.shape[0]} endmembers, {X.dtype}")

    fcls(X[:1000], E)  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        A = fcls(X, E)
        times.append(time.perf_counter() - t0)
    t_ours = min(times)
    kkt = kkt_violation(X, E, A, "fcls")
    print(f"orbitml fcls: {t_ours * 1e3:.1f} ms (best of {repeats}; all {[round(t * 1e3, 1) for t in times]} ms); "
          f"{(A == 0).mean() * 100:.1f} % of abundances at the bound; worst KKT violation {max(kkt.values()):.1e}")

    rng = np.random.default_rng(1)
    sub = np.sort(rng.choice(X.shape[0], n_ref, replace=False))
    delta = 1e3 * float(np.abs(E).max())
    Xs = X[sub].astype(np.float64)
    t0 = time.perf_counter()
    R = reference_fcls(Xs, E, delta)
    t_ref_sub = time.perf_counter() - t0
    t_ref = t_ref_sub / n_ref * X.shape[0]
    diff = float(np.abs(R - A[sub]).max())
    print(f"scipy per-pixel reference: {t_ref_sub:.2f} s for {n_ref} pixels -> {t_ref:.2f} s extrapolated to "
          f"{X.shape[0]} pixels ({t_ref_sub / n_ref * 1e6:.1f} us/pixel)")
    print(f"max |orbitml - reference| on the subset: {diff:.2e} (target <= 1e-6)")
    print(f"ratio nnls-reference / orbitml: {t_ref / t_ours:.1f}x (target >= 50x)")

    n_qp = 100 if args.quick else 300
    Xq = Xs[:n_qp]
    t0 = time.perf_counter()
    Q = reference_slsqp(Xq, E)
    t_qp_sub = time.perf_counter() - t0
    t_qp = t_qp_sub / n_qp * X.shape[0]
    print(f"scipy per-pixel QP (SLSQP): {t_qp_sub:.2f} s for {n_qp} pixels -> {t_qp:.1f} s extrapolated "
          f"({t_qp_sub / n_qp * 1e6:.0f} us/pixel); max |orbitml - QP| {np.abs(Q - A[sub[:n_qp]]).max():.2e}")
    print(f"ratio QP-reference / orbitml: {t_qp / t_ours:.0f}x (target >= 50x)")
    print("note: timings on a shared 2-core machine; both single-threaded, same process, same data")


if __name__ == "__main__":
    main()
