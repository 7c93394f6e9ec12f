"""Endmember count: the noise estimator, HFC/NWHFC/HySime and the consensus."""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.unmix import estimate_count, estimate_noise, hfc, hysime, nwhfc


def _mixture(p=4, b=60, n=4000, sigma=0.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, b)
    E = np.array([0.4 + 0.25 * np.sin(2 * np.pi * (k + 1) * t + k) for k in range(p)])
    A = rng.dirichlet(np.ones(p), n)
    return A @ E + sigma * rng.standard_normal((n, b)), E


def test_noise_estimate_recovers_known_band_noise():
    X, _ = _mixture(sigma=0.0)
    rng = np.random.default_rng(5)
    sig = np.linspace(0.002, 0.01, X.shape[1])  # band-dependent noise
    W, Rn = estimate_noise(X + rng.standard_normal(X.shape) * sig)
    est = np.sqrt(np.diag(Rn))
    # the regressors are noisy too, which inflates the residual a little (a known, small upward bias)
    np.testing.assert_allclose(est, sig, rtol=0.25)
    assert np.corrcoef(est, sig)[0, 1] > 0.97
    assert np.median(est / sig) == pytest.approx(1.0, abs=0.1)
    assert np.count_nonzero(Rn - np.diag(np.diag(Rn))) == 0


def test_noise_estimate_is_the_regression_residual():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 6))
    W, _ = estimate_noise(X, regularisation=0.0)
    for i in range(6):  # independent: ordinary least squares of band i on the others
        others = np.delete(X, i, axis=1)
        beta = np.linalg.lstsq(others, X[:, i], rcond=None)[0]
        np.testing.assert_allclose(W[:, i], X[:, i] - others @ beta, atol=1e-9)


def test_hysime_on_sim_scenes(hsi):
    name, Y, E, A = hsi
    est = estimate_count(Y)
    assert est.hysime == 6 and est.p == 6
    assert 2 <= est.hfc <= 7 and 2 <= est.nwhfc <= 7
    assert set(est.as_dict()) >= {"p", "hfc", "nwhfc", "hysime"}


@pytest.mark.parametrize("p", [3, 5])
def test_counts_on_noisy_mixtures(p):
    X, _ = _mixture(p=p, sigma=0.003, n=5000)
    assert hysime(X)[0] == p
    # the HFC test only sees components with mean energy: it may undercount such mixtures, never overcount
    assert 1 <= nwhfc(X, far=1e-3) <= p
    assert 1 <= hfc(X) <= p
    est = estimate_count(X)
    assert est.p == p and est.rule == "auto" and est.decided_by == "hysime"
    assert estimate_count(X, rule="median").p == int(np.median([est.hfc, est.nwhfc, est.hysime]))


def test_hfc_counts_mean_shift_components():
    # two independent signal components with non-zero means and different variances, plus white noise:
    # K = diag(4, 1, 0.01...), R = K + m m^T with m = (5, 3, 0...): by hand the eigenvalues of R's 2x2
    # block are 37.25 and 1.74 against K's 4 and 1, so exactly two differ beyond the NP threshold
    rng = np.random.default_rng(2)
    n, b = 20000, 12
    S = np.zeros((n, b))
    S[:, 0] = 5 + 2 * rng.normal(size=n)
    S[:, 1] = 3 + rng.normal(size=n)
    X = S + rng.normal(scale=0.1, size=(n, b))
    assert hfc(X, far=1e-3) == 2
    S[:, 0] = 5 + rng.normal(size=n)  # equal variances: the mean shift lands on one eigenvalue only
    assert hfc(S + rng.normal(scale=0.1, size=(n, b)), far=1e-3) == 1


def test_constant_band_is_dropped_and_reported():
    X, _ = _mixture(p=3, sigma=0.003)
    X = np.column_stack([X, np.full(X.shape[0], 0.5)])
    est = estimate_count(X)
    assert est.dropped_bands == [X.shape[1] - 1]
    assert est.hysime == 3


def test_bad_input():
    X, _ = _mixture()
    with pytest.raises(OrbitmlInputError, match="false-alarm"):
        hfc(X, far=1.5)
    with pytest.raises(OrbitmlInputError, match="constant"):
        estimate_count(np.ones((100, 5)))
    with pytest.raises(OrbitmlInputError, match="more pixels than bands"):
        nwhfc(X[:50])
    assert estimate_count(X[:50]).hysime is None  # falls back to HFC with a note
    assert 1 <= hfc(X[:50]) <= 4  # HFC itself needs no noise regression
    X[0, 0] = np.nan
    with pytest.raises(OrbitmlInputError, match="NaN"):
        estimate_count(X)


def test_noise_variance_unbiased_with_few_pixels():
    # 400 pixels x 120 bands: dividing the residual sum of squares by n would give 0.83 of the truth
    rng = np.random.default_rng(9)
    X, _ = _mixture(p=3, b=120, n=400)
    _, Rn = estimate_noise(X + 0.01 * rng.standard_normal(X.shape))
    assert np.sqrt(np.mean(np.diag(Rn))) == pytest.approx(0.01, rel=0.03)


def test_count_with_fewer_pixels_than_bands_falls_back_to_hfc():
    from orbitml.unmix import estimate_count

    rng = np.random.default_rng(1)
    E = rng.uniform(0.1, 0.9, (3, 80))
    A = rng.dirichlet(np.ones(3), 60)
    X = A @ E + rng.normal(0, 1e-3, (60, 80))
    est = estimate_count(X)
    assert est.hysime is None and est.nwhfc is None and est.rule == "hfc"
    assert est.p == est.hfc and 2 <= est.p <= 4
    assert "too few for the noise regression" in est.notes[0]


def test_auto_rule_distrusts_hysime_under_spatially_correlated_noise(sim1):
    from scipy.ndimage import gaussian_filter

    Y, _, _ = sim1
    rng = np.random.default_rng(0)
    cube = Y.reshape(105, 105, -1)
    N = gaussian_filter(rng.standard_normal(cube.shape), (2, 2, 0))  # noise correlated between pixels
    N *= np.sqrt(np.mean(cube**2) / 1e3 / np.mean(N**2))  # 30 dB
    est = estimate_count((cube + N).reshape(-1, cube.shape[-1]))
    assert est.hysime > 2 * max(est.hfc, est.nwhfc) + 2  # the published HySime rule overcounts here
    assert est.decided_by in ("hfc", "nwhfc") and est.p == max(est.hfc, est.nwhfc) and est.p <= 6
    assert any("exceeds" in n for n in est.notes)
    white = rng.standard_normal(cube.shape) * np.sqrt(np.mean(cube**2) / 1e3)
    est_w = estimate_count((cube + white).reshape(-1, cube.shape[-1]))
    assert est_w.decided_by == "hysime" and est_w.p == est_w.hysime
