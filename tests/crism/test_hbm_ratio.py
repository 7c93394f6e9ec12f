"""HBM posterior predictive against direct formulas and scipy; column ratioing against a loop."""

import numpy as np
import pytest
from scipy.stats import multivariate_t

from orbitml.crism.hbm import HBMClassifier
from orbitml.crism.ratio import BlandModel, candidate_rows, column_ratio
from tests.crism import _sim


def _data(seed=0, d=4):
    rng = np.random.default_rng(seed)
    X, y, g = [], [], []
    for k in range(3):
        for j in range(3 + k):
            n = int(rng.integers(3, 30))
            X.append(rng.normal(k, 0.4, d) + rng.normal(0, 0.5, (n, d)))
            y += [k * 10] * n
            g += [100 * k + j] * n
    return np.vstack(X), np.array(y), np.array(g)


def test_posterior_predictive_matches_direct_formulas():
    X, y, g = _data()
    d = X.shape[1]
    m = HBMClassifier(kappa0=1.0, kappa1=100.0).fit(X, y, g)
    # class-balanced prior, computed independently
    mus, covs = [], []
    for k in np.unique(y):
        ims = np.unique(g[y == k])
        mus.append(np.mean([X[(y == k) & (g == j)].mean(0) for j in ims], axis=0))
        covs.append(np.mean([np.cov(X[(y == k) & (g == j)].T) for j in ims], axis=0))
    mu0, S0 = np.mean(mus, 0), np.mean(covs, 0)
    np.testing.assert_allclose(m.mu0_, mu0)
    np.testing.assert_allclose(m.S0_, S0)
    for i, k in enumerate(np.unique(y)):
        ims = np.unique(g[y == k])
        n = np.array([np.sum((y == k) & (g == j)) for j in ims])
        xb = np.array([X[(y == k) & (g == j)].mean(0) for j in ims])
        C = sum((X[(y == k) & (g == j)] - xb[t]).T @ (X[(y == k) & (g == j)] - xb[t]) for t, j in enumerate(ims))
        kj = n * 100 / (n + 100)
        kap = kj.sum() + 1
        kbar = kap * 100 / (kap + 100)
        v = n.sum() - ims.size + (d + 2) - d + 1
        np.testing.assert_allclose(m.dofs_[i], v)
        np.testing.assert_allclose(m.means_[i], (kj @ xb + mu0) / kap)
        np.testing.assert_allclose(m.scales_[i], (S0 + C) * (kbar + 1) / (kbar * v))


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 2e-3)])
def test_log_likelihood_matches_scipy_student_t(dtype, tol):
    X, y, g = _data(1, d=6)
    m = HBMClassifier(compute_dtype=dtype).fit(X, y, g)
    ll = m.predict_log_likelihood(X)
    ref = np.stack([multivariate_t(m.means_[k], m.scales_[k], df=m.dofs_[k]).logpdf(X) for k in range(3)], 1)
    np.testing.assert_allclose(ll, ref, atol=tol, rtol=tol)
    p = m.predict_proba(X)
    np.testing.assert_allclose(p.sum(1), 1)
    assert (m.predict(X) == y).mean() > 0.9


def test_arrays_round_trip():
    X, y, g = _data(2)
    m = HBMClassifier().fit(X, y, g)
    m2 = HBMClassifier.from_arrays({k: v.copy() for k, v in m.to_arrays("a_").items()}, "a_")
    np.testing.assert_array_equal(m.predict_log_likelihood(X), m2.predict_log_likelihood(X))


def ref_ratio(cube, B, half=49, n=3):
    h, w, _ = cube.shape
    out = np.full(cube.shape, np.nan, dtype=np.float32)
    for i in range(h):
        # crism_ml's _y_slice (window = half + 1): rows 0..2h at the top, h-2h-2..h-2 at the bottom
        if h < 2 * half + 2:
            span = range(h)
        elif i <= half:
            span = range(0, 2 * half + 1)
        elif i >= h - half - 1:
            span = range(h - 2 * half - 2, h - 1)
        else:
            span = range(i - half, i + half + 1)
        for c in range(w):
            if not np.isfinite(B[i, c]):
                continue
            rows = [j for j in span if abs(j - i) > 1 and np.isfinite(B[j, c])]
            if len(rows) < n:
                continue
            top = sorted(rows, key=lambda j: -B[j, c])[:n]
            out[i, c] = cube[i, c] / cube[top, c].mean(0)
    return out


@pytest.mark.parametrize("h", [5, 60, 130])
def test_column_ratio_matches_loop(h):
    rng = np.random.default_rng(h)
    cube = (rng.random((h, 6, 4)) + 0.5).astype(np.float32)
    B = rng.normal(size=(h, 6))
    B[2, 1] = -np.inf
    B[min(40, h - 1), 3] = -np.inf
    r, best = column_ratio(cube, B)
    np.testing.assert_allclose(r, ref_ratio(cube, B), rtol=1e-5)
    assert np.isnan(r[2, 1]).all()


def test_candidate_window_excludes_neighbours_and_shifts_at_edges():
    c = candidate_rows(300)
    assert c.shape == (300, 99)
    assert set(c[0][c[0] >= 0]) == set(range(2, 99))
    assert set(c[150][c[150] >= 0]) == set(range(101, 200)) - {149, 150, 151}
    assert set(c[299][c[299] >= 0]) == set(range(200, 298))  # crism_ml: rows h-100..h-2
    assert set(c[250][c[250] >= 0]) == set(range(200, 299)) - {249, 250, 251}


def test_bland_model_ranks_neutral_above_minerals_and_ratio_removes_column_pattern():
    clf, bm = _sim.model()
    im = _sim.copy_image()
    cube, truth, wl = im["cube"], im["truth"], im["wavelengths"]
    s = bm.score(cube.reshape(-1, wl.size)).reshape(truth.shape)
    assert np.median(s[truth == 39]) > np.median(s[(truth > 0) & (truth != 39)])
    B = np.where(im["bad"], -np.inf, s)
    r, _ = column_ratio(cube, B)
    neutral = (truth == 39) & np.isfinite(r).all(2)
    main = wl < 2650
    # ratioed neutral pixels are flat (level only) where raw spectra carry atmosphere and detector pattern
    def roughness(a):
        a = a[..., main] / a[..., main].mean(-1, keepdims=True)
        return np.abs(np.diff(a, axis=-1)).mean()
    assert roughness(r[neutral]) < 0.5 * roughness(cube[neutral])


def test_bland_model_persistence():
    _, bm = _sim.model()
    bm2 = BlandModel.from_arrays(bm.to_arrays())
    X = _sim.bland()["pixspec"][:50]
    np.testing.assert_array_equal(bm.score(X), bm2.score(X))


numba_only = pytest.mark.skipif(not __import__("orbitml.crism._kernels", fromlist=["AVAILABLE"]).AVAILABLE,
                                reason="numba is not installed")


@numba_only
@pytest.mark.parametrize("h,n_bland", [(4, 1), (5, 3), (60, 3), (130, 2), (130, 5)])
def test_column_ratio_engines_agree_with_ties_and_bad_pixels(h, n_bland):
    rng = np.random.default_rng(h + n_bland)
    cube = (rng.random((h, 9, 7)) + 0.5).astype(np.float32)
    B = rng.normal(size=(h, 9))
    B[rng.random(B.shape) < 0.1] = 0.25  # ties: the earlier row wins in both engines
    B[rng.random(B.shape) < 0.08] = -np.inf
    a, ba = column_ratio(cube, B, n_bland=n_bland, engine="numba", threads=2)
    b, bb = column_ratio(cube, B, n_bland=n_bland, engine="numpy")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ba, bb)
    if n_bland == 3:
        np.testing.assert_allclose(a, ref_ratio(cube, B), rtol=1e-5)


def test_score_pixels_matches_score_in_float64_and_float32():
    _, bm = _sim.model()
    X = _sim.bland()["pixspec"][:300].astype(np.float32)
    rows = np.arange(0, 300, 2)
    ref = bm.score(X[rows])
    np.testing.assert_allclose(bm.score_pixels(X, bm.band_index_, rows, dtype="float64"), ref, rtol=1e-9)
    s32 = bm.score_pixels(X, bm.band_index_, rows, dtype="float32")
    np.testing.assert_allclose(s32, ref, rtol=2e-3, atol=1e-2)
    # the ranking that column ratioing relies on survives float32
    assert np.corrcoef(np.argsort(np.argsort(s32)), np.argsort(np.argsort(ref)))[0, 1] > 0.999


@pytest.mark.parametrize("L", [248, 40, 27])
def test_bland_spike_median_in_float32_is_the_float64_median_bit_for_bit(L):
    """The bland model's 27-band running median takes float32 for the full windows when the
    spectra are float32 values, float64 at the ends (even counts average two values)."""
    from orbitml.crism.preprocess import medfilt1
    from orbitml.crism.ratio import _medfilt27

    rng = np.random.default_rng(L)
    X = np.round(rng.random((30, L)), 2).astype(np.float32).astype(np.float64)  # ties, float32-exact
    np.testing.assert_array_equal(_medfilt27(X), medfilt1(X, 27))
    Y = rng.random((30, L))  # not float32 values: the float64 path
    np.testing.assert_array_equal(_medfilt27(Y), medfilt1(Y, 27))
