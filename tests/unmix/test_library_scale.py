"""Abundances at library scale: FCLS/NNLS/UCLS with hundreds of endmembers (more than bands), SUnSAL,
CLSUnSAL and endmember bundles, each against an independent solver or a known answer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.optimize import nnls as scipy_nnls

from orbitml.errors import OrbitmlInputError
from orbitml.unmix import (
    clsunsal,
    fcls,
    kkt_violation,
    lambda_rule,
    nnls,
    sunsal,
    ucls,
    unmix_library,
)


def _library(p=120, b=40, n=300, k=3, sigma=0.01, seed=0, smooth=True):
    """Pixels mixing k of p library spectra; smooth=True: random-walk spectra (strongly collinear)."""
    rng = np.random.default_rng(seed)
    if smooth:
        E = np.abs(np.cumsum(rng.normal(size=(p, b)), axis=1)) * 0.05 + 0.2
    else:
        E = rng.uniform(0.1, 1.0, (p, b))
    true = np.sort(rng.choice(p, k, replace=False))
    A = np.zeros((n, p))
    A[:, true] = rng.dirichlet(np.ones(k), n)
    return A @ E + rng.normal(0, sigma, (n, b)), E, A, true


@pytest.mark.parametrize("algorithm", ["per-pixel", "grouped"])
def test_fcls_nnls_more_endmembers_than_bands_match_scipy(algorithm):
    X, E, _, _ = _library(p=120 if algorithm == "per-pixel" else 70, n=60 if algorithm == "grouped" else 200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # must converge
        Af = fcls(X, E, algorithm=algorithm)
        An = nnls(X, E, algorithm=algorithm)
    assert max(kkt_violation(X, E, Af, "fcls").values()) < 1e-8
    assert max(kkt_violation(X, E, An, "nnls").values()) < 1e-8
    delta = 1e4 * np.abs(E).max()
    M = np.vstack([E.T, np.full(E.shape[0], delta)])
    for i in range(0, X.shape[0], 7):  # independent per-pixel references
        np.testing.assert_allclose(An[i], scipy_nnls(E.T, X[i])[0], atol=1e-7)
        ref = scipy_nnls(M, np.append(X[i], delta), maxiter=50 * E.shape[0])[0]
        np.testing.assert_allclose(Af[i], ref, atol=1e-6)


def test_grouped_and_per_pixel_agree_beyond_63_endmembers():
    X, E, _, _ = _library(p=90, n=40, seed=2)  # the old int64 working-set code overflowed here
    np.testing.assert_allclose(fcls(X, E, algorithm="grouped"), fcls(X, E, algorithm="per-pixel"), atol=1e-9)


@pytest.mark.parametrize("algorithm", ["grouped", "per-pixel"])
def test_collinear_endmembers_reach_the_optimum(algorithm):
    # issue 18: E = [e, 2e, 3e]; every FCLS mixture is t e with t in [1, 3], so the optimum is known in closed form
    rng = np.random.default_rng(4)
    e = rng.uniform(0.1, 1, 30)
    E = np.array([e, 2 * e, 3 * e])
    X = rng.uniform(0, 4, (50, 1)) * e + rng.normal(0, 0.05, (50, 30))
    A = fcls(X, E, algorithm=algorithm)
    t_best = np.clip(X @ e / (e @ e), 1, 3)
    best = np.sum((X - t_best[:, None] * e) ** 2, axis=1)
    got = np.sum((X - A @ E) ** 2, axis=1)
    np.testing.assert_allclose(got, best, rtol=1e-10, atol=1e-12)
    assert max(kkt_violation(X, E, A, "fcls").values()) < 1e-10


def test_ucls_min_norm_and_ridge():
    X, E, _, _ = _library(p=60, b=25, n=30)
    ref = np.linalg.lstsq(E.T, X.T, rcond=None)[0].T  # lstsq gives the minimum-norm solution
    np.testing.assert_allclose(ucls(X, E), ref, atol=1e-8)
    lam = 0.3
    ridge = np.linalg.solve(E @ E.T + lam * np.eye(E.shape[0]), E @ X.T).T
    np.testing.assert_allclose(ucls(X, E, ridge=lam), ridge, atol=1e-9)
    with pytest.raises(OrbitmlInputError, match="ridge"):
        ucls(X, E, ridge=-1)


def _lasso_obj(A, X, E, lam):
    return 0.5 * np.sum((X - A @ E) ** 2, axis=1) + lam * np.abs(A).sum(axis=1)


def test_sunsal_admm_matches_exact_and_scipy():
    X, E, _, _ = _library(p=25, b=30, n=80, seed=1, smooth=False)  # p <= bands: a unique optimum to compare with
    lam = lambda_rule(X, E).lam
    A, info = sunsal(X, E, lam, solver="admm", return_info=True)
    exact = sunsal(X, E, lam, solver="active-set")
    assert info.converged == X.shape[0] and A.min() >= 0
    f_admm, f_exact = _lasso_obj(A, X, E, lam), _lasso_obj(exact, X, E, lam)
    assert np.all(f_admm >= f_exact - 1e-9)  # the exact solver is never beaten
    assert np.all((f_admm - f_exact) / f_exact < 1e-4)
    for i in range(0, X.shape[0], 20):  # an independent smooth solve: on a >= 0, |a| = a
        x = X[i]
        r = minimize(lambda a, x=x: 0.5 * np.sum((x - a @ E) ** 2) + lam * a.sum(), np.full(E.shape[0], 0.01),
                     jac=lambda a, x=x: (a @ E - x) @ E.T + lam, method="L-BFGS-B",
                     bounds=[(0, None)] * E.shape[0], options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000})
        assert f_exact[i] <= r.fun + 1e-9
        np.testing.assert_allclose(exact[i], r.x, atol=1e-5)


def test_sunsal_without_positivity_matches_plain_admm():
    # an independent per-pixel ADMM written here (plain, no relaxation, fixed mu) on the unconstrained lasso
    X, E, _, _ = _library(p=12, b=30, n=10, seed=3)
    lam = 0.05
    A = sunsal(X, E, lam, positivity=False, tol=1e-9, max_iter=20000)
    G, mu = E @ E.T, 1.0
    Inv = np.linalg.inv(G + mu * np.eye(E.shape[0]))
    for i in range(X.shape[0]):
        u = d = np.zeros(E.shape[0])
        b = E @ X[i]
        for _ in range(20000):
            a = Inv @ (b + mu * (u + d))
            u = np.sign(a - d) * np.maximum(np.abs(a - d) - lam / mu, 0)
            d = d - (a - u)
        np.testing.assert_allclose(A[i], u, atol=1e-6)


def test_sunsal_sum_to_one_is_fcls():
    X, E, _, _ = _library(p=30, b=30, n=40, seed=5)
    A = sunsal(X, E, 0.0, sum_to_one=True, tol=1e-9, max_iter=50000)  # ADMM (auto with sum-to-one)
    np.testing.assert_allclose(A, fcls(X, E), atol=1e-5)


def _cls_obj(A, X, E, lam):
    return 0.5 * np.sum((X - A @ E) ** 2) + lam * np.linalg.norm(A, axis=0).sum()


def test_clsunsal_matches_independent_proximal_gradient():
    X, E, _, true = _library(p=25, b=30, n=60, seed=6, smooth=False)
    lam = lambda_rule(X, E, collaborative=True).lam
    A = clsunsal(X, E, lam, tol=1e-8, max_iter=20000)
    # FISTA on the same objective, written here: gradient step on the data term, prox of l2,1 + A >= 0
    L = np.linalg.norm(E @ E.T, 2)
    Z = Y = np.zeros_like(A)
    t = 1.0
    for _ in range(20000):
        V = np.maximum(Y - ((Y @ E - X) @ E.T) / L, 0)
        nrm = np.linalg.norm(V, axis=0)
        Zn = V * np.maximum(0, 1 - (lam / L) / np.where(nrm > 0, nrm, 1))
        tn = (1 + np.sqrt(1 + 4 * t * t)) / 2
        Y, Z, t = Zn + (t - 1) / tn * (Zn - Z), Zn, tn
    f_a, f_f = _cls_obj(A, X, E, lam), _cls_obj(Z, X, E, lam)
    assert abs(f_a - f_f) / f_f < 1e-6
    np.testing.assert_allclose(A, Z, atol=1e-3)
    used = np.flatnonzero(np.abs(A).max(axis=0) > 1e-3)
    assert set(true) <= set(used) and used.size < E.shape[0] // 2  # row sparse, true spectra kept


def test_bundles_sum_over_class_spectra():
    from orbitml.spectra import SpectralLibrary

    X, E, A_true, true = _library(p=40, b=30, n=100, seed=7, smooth=False)
    names = [f"{'alpha' if i % 2 else 'beta'}_{i}" for i in range(E.shape[0])]
    lib = SpectralLibrary(E, np.linspace(1000, 2000, E.shape[1]), names)
    res = unmix_library(X, lib, "fcls", classes={"Alpha": "alpha", "Beta": "beta"})
    sub, ci, cn = lib.group({"Alpha": "alpha", "Beta": "beta"})
    A = fcls(X, sub.spectra)
    # the class abundance is the sum over the class's spectra, written out here column by column
    by_hand = np.column_stack([A[:, ci == k].sum(axis=1) for k in range(len(cn))])
    np.testing.assert_allclose(res.class_abundances, by_hand, atol=1e-9)
    np.testing.assert_allclose(res.class_abundances.sum(axis=1), 1.0, atol=1e-9)
    expect = np.column_stack([A_true[:, [i for i in range(40) if i % 2]].sum(1),
                              A_true[:, [i for i in range(40) if not i % 2]].sum(1)])
    assert np.sqrt(np.mean((res.class_abundances - expect) ** 2)) < 0.1
    res_s = unmix_library(X, lib, "sunsal", classes={"Alpha": "alpha", "Beta": "beta"})
    dense = res_s.dense()
    np.testing.assert_allclose(res_s.class_abundances,
                               np.column_stack([dense[:, ci == k].sum(axis=1) for k in range(len(cn))]), atol=1e-12)
    with pytest.raises(OrbitmlInputError, match="no spectrum"):
        unmix_library(X, lib, "fcls", classes={"Gamma": "gamma"})


def test_penalty_errors():
    X, E, _, _ = _library(p=10, b=20, n=20)
    for bad in (-1.0, float("nan"), "x"):
        with pytest.raises(OrbitmlInputError, match="lambda"):
            sunsal(X, E, bad)
        with pytest.raises(OrbitmlInputError, match="lambda"):
            clsunsal(X, E, bad)


@pytest.fixture(scope="module")
def usgs():
    from orbitml.spectra import read_library
    from orbitml.unmix import prepare_library
    from tests.conftest import shared_file

    lib = read_library(shared_file("hsi/envi/s07_AV95_envi.sli"))
    lib = lib.take(np.flatnonzero(np.isfinite(lib.spectra).all(axis=1)))
    return prepare_library(lib, drop_duplicates=True)


@pytest.mark.parametrize("method", ["fcls", "sunsal"])
def test_simulated_scene_from_real_usgs_library(usgs, method):
    from orbitml.unmix import sre_db

    rng = np.random.default_rng(11)
    lib = usgs.take(np.sort(rng.choice(len(usgs), 150, replace=False)))
    E = lib.spectra.astype(np.float64)
    true = np.sort(rng.choice(len(lib), 3, replace=False))
    A = np.zeros((300, len(lib)))
    A[:, true] = rng.dirichlet(np.ones(3), 300)
    X = A @ E + rng.normal(0, 0.002, (300, E.shape[1]))  # about 40 dB
    res = unmix_library(X, lib, method)
    Ah = res.dense()
    rmse, sre = float(np.sqrt(np.mean((Ah - A) ** 2))), sre_db(A, Ah)
    print(f"{method}: {len(res.indices)} of {len(lib)} spectra selected; abundance RMSE {rmse:.4f}, SRE {sre:.1f} dB; "
          f"lambda {res.lam}")
    assert set(true) <= set(res.indices.tolist())
    assert set(res.indices[:3].tolist()) == set(true)  # the largest total abundances are the true ones
    assert np.all(np.diff(res.total) <= 0)
    assert sre > 10.0 and rmse < 0.05
    assert np.median(res.rmse) < 0.0025  # residual at the noise level


def test_prepare_library_resamples_or_refuses(usgs, tmp_path):
    from orbitml.spectra import SpectralLibrary
    from orbitml.unmix import prepare_library

    lib = usgs.take(np.arange(5))
    wl = np.linspace(1000, 2400, 50)
    out = prepare_library(lib, wl, np.full(50, 20.0))
    np.testing.assert_allclose(out.wavelength, wl)
    ref = lib.resample(wl, np.full(50, 20.0)).spectra
    np.testing.assert_allclose(out.spectra, ref)
    with pytest.raises(OrbitmlInputError, match="cannot be resampled"):
        prepare_library(lib, np.linspace(300, 2600, 50), source=tmp_path / "lib.sli")
    nan = SpectralLibrary(np.vstack([lib.spectra[:2], np.full(lib.n_bands, np.nan)]), lib.wavelength)
    with pytest.raises(OrbitmlInputError, match="missing values"):
        prepare_library(nan)
    assert len(prepare_library(nan, drop_incomplete=True)) == 2
    dup = SpectralLibrary(np.vstack([lib.spectra[:2], lib.spectra[:1]]), lib.wavelength, ["a", "b", "c"])
    with pytest.raises(OrbitmlInputError, match="'a' \\(#1\\) and 'c' \\(#3\\) are identical"):
        prepare_library(dup)
