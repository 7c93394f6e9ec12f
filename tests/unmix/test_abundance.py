"""FCLS / NNLS / UCLS: exact answers on sim1/sim2, KKT to 1e-8, agreement with per-pixel solvers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.optimize import nnls as scipy_nnls

from orbitml.errors import OrbitmlInputError
from orbitml.simulate import simulate_scene
from orbitml.unmix import AbundanceEstimator, abundance_rmse, fcls, kkt_violation, nnls, ucls
from orbitml.unmix.abundance import _project_simplex


def test_fcls_true_endmembers_reproduce_sim_abundances(hsi):
    name, Y, E, A = hsi
    Ah = fcls(Y, E)
    assert abundance_rmse(A, Ah, scale=1.0) < 1e-6
    assert abundance_rmse(A, Ah) < 1e-6  # even the x100 figure
    assert Ah.min() >= 0 and np.allclose(Ah.sum(axis=1), 1.0, atol=1e-12)


@pytest.fixture(scope="module")
def noisy():
    sim = simulate_scene(shape=(40, 40), n_endmembers=5, snr_db=25.0, seed=3, temperature=0.3)
    X = sim.scene.values.reshape(sim.scene.shape[0], -1).T.astype(np.float64)
    return X, sim.endmembers, sim.abundances.reshape(sim.endmembers.shape[0], -1).T


def test_fcls_kkt_to_1e8_on_noisy_scene(noisy):
    X, E, _ = noisy
    A = fcls(X, E)
    v = kkt_violation(X, E, A, "fcls")
    assert (A == 0).mean() > 0.05  # the constraints are active somewhere: a real test of the active set
    assert max(v.values()) < 1e-8, v


def test_nnls_kkt_and_matches_scipy(noisy):
    X, E, _ = noisy
    A = nnls(X, E)
    v = kkt_violation(X, E, A, "nnls")
    assert max(v.values()) < 1e-8, v
    ref = np.array([scipy_nnls(E.T, x)[0] for x in X[:200]])
    np.testing.assert_allclose(A[:200], ref, atol=1e-7)


def test_fcls_objective_not_above_slsqp(noisy):
    X, E, _ = noisy
    A = fcls(X[:30], E)
    p = E.shape[0]
    for x, a in zip(X[:30], A, strict=True):
        res = minimize(lambda v, x=x: np.sum((v @ E - x) ** 2), np.full(p, 1 / p), method="SLSQP",
                       bounds=[(0, 1)] * p, constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}],
                       options={"ftol": 1e-14, "maxiter": 500})
        assert np.sum((a @ E - x) ** 2) <= res.fun + 1e-10
        np.testing.assert_allclose(a, res.x, atol=1e-4)


def test_ucls_matches_lstsq(noisy):
    X, E, _ = noisy
    ref = np.linalg.lstsq(E.T, X.T, rcond=None)[0].T
    np.testing.assert_allclose(ucls(X, E), ref, atol=1e-9)


def test_float32_input_same_answer(noisy):
    X, E, _ = noisy
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(fcls(X32, E), fcls(X32.astype(np.float64), E), atol=1e-12)


def test_project_simplex_against_brute_force():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(50, 4))
    P = _project_simplex(V)
    assert np.allclose(P.sum(1), 1) and P.min() >= 0
    for v, pr in zip(V, P, strict=True):  # projection: no feasible point is closer
        cand = rng.dirichlet(np.ones(4), 2000)
        assert np.sum((v - pr) ** 2) <= np.min(np.sum((cand - v) ** 2, axis=1)) + 1e-12


def test_estimator_on_scene_keeps_grid_and_nodata():
    sim = simulate_scene(shape=(20, 24), n_endmembers=3, snr_db=None, nodata_fraction=0.2, seed=1)
    out = AbundanceEstimator("fcls").fit(sim.endmembers).transform(sim.scene)
    assert out.shape == (3, 20, 24)
    v = sim.valid
    assert np.isnan(out.values[:, ~v]).all()
    np.testing.assert_allclose(out.values[:, v], sim.abundances[:, v], atol=1e-6)


@pytest.mark.parametrize("bad, msg", [
    ("nan", "NaN"), ("allnan", "every pixel"), ("transposed", "transpose"),
])
def test_bad_input_is_clear(bad, msg):
    rng = np.random.default_rng(0)
    E = rng.uniform(0.1, 1, (3, 10))
    X = rng.dirichlet(np.ones(3), 50) @ E
    if bad == "nan":
        X[3, 4] = np.nan
    elif bad == "allnan":
        X[:, 2] = np.nan
    elif bad == "transposed":
        E = E.T
    with pytest.raises(OrbitmlInputError, match=msg):
        fcls(X, E)


@pytest.mark.parametrize("case", ["duplicate", "collinear", "scaled", "outside", "negative"])
def test_degenerate_problems_still_meet_kkt(case):
    rng = np.random.default_rng(0)
    E = rng.uniform(0.1, 1, (4, 30))
    X = rng.dirichlet(np.ones(4), 1500) @ E + rng.normal(0, 0.01, (1500, 30))
    method = "fcls"
    if case == "duplicate":
        E = np.vstack([E, E[1]])
    elif case == "collinear":
        E = np.vstack([E, 0.5 * E[0] + 0.5 * E[2]])
    elif case == "scaled":
        X, E = X * 1e6, E * 1e6
    elif case == "outside":
        X = 5 * X - 3  # far outside the simplex: many pixels end on a vertex or an edge
    else:
        X, method = -X, "nnls"  # every abundance at zero
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the active-set loop must converge, not stop at max_iter
        A = (fcls if method == "fcls" else nnls)(X, E)
    assert max(kkt_violation(X, E, A, method).values()) < 1e-8
    if case == "negative":
        assert (A == 0).all()
