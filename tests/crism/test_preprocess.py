"""Running median, despiking, column spikes and bad values against direct computations."""

import numpy as np
import pytest

from orbitml.crism.preprocess import (
    _pruned_network,
    despike,
    mask_bad_values,
    medfilt1,
    minmax_rows,
    normr,
    remove_column_spikes,
)


def ref_medfilt(x, k):
    r = k // 2
    L = x.shape[-1]
    return np.stack([np.median(x[..., max(0, c - r): min(L, c + r + 1)], axis=-1) for c in range(L)], -1)


@pytest.mark.parametrize("k", [1, 3, 5, 7, 11, 27])
@pytest.mark.parametrize("L", [4, 11, 12, 31, 64])
def test_medfilt1_matches_truncated_median(k, L):
    x = np.random.default_rng(k * 100 + L).random((23, L)).astype(np.float32)
    np.testing.assert_allclose(medfilt1(x, k, chunk=5, threads=2), ref_medfilt(x, k), rtol=1e-6)


def test_medfilt1_3d_and_rejects_even():
    x = np.random.default_rng(0).random((3, 4, 40))
    np.testing.assert_allclose(medfilt1(x, 7), ref_medfilt(x, 7))
    with pytest.raises(ValueError):
        medfilt1(x, 4)


def test_pruned_network_selects_middle_order_statistics():
    rng = np.random.default_rng(1)
    for m in (2, 6, 10):
        net = _pruned_network(m, (m // 2 - 1, m // 2))
        for _ in range(50):
            v = list(rng.random(m))
            for a, b in net:
                if v[a] > v[b]:
                    v[a], v[b] = v[b], v[a]
            s = sorted(v)
            assert v[m // 2 - 1] == s[m // 2 - 1] and v[m // 2] == s[m // 2]


def test_despike_removes_injected_spikes_and_keeps_smooth_spectra():
    rng = np.random.default_rng(2)
    t = np.linspace(0, 1, 120)
    X = (0.3 + 0.05 * np.sin(6 * t))[None, :] * rng.uniform(0.8, 1.2, (200, 1)) + rng.normal(0, 2e-3, (200, 120))
    clean = X.astype(np.float32).copy()
    pos = [(5, 40), (17, 3), (100, 77), (150, 119)]
    for r, c in pos:
        X[r, c] *= 1.8
    out, nrep = despike(X)
    for r, c in pos:
        assert abs(out[r, c] - clean[r, c]) < 0.01
        assert nrep[r] >= 1
    untouched = np.setdiff1d(np.arange(200), [p[0] for p in pos])
    # noisy smooth spectra: few replacements, each by a value within the noise
    changed = out[untouched] != clean[untouched]
    assert changed.mean() < 0.01
    assert np.abs(out[untouched] - clean[untouched]).max() < 0.02


def test_despike_threshold_is_crism_ml_rule():
    rng = np.random.default_rng(3)
    X = rng.random((50, 30)).astype(np.float32)
    med = ref_medfilt(X, 11)
    d = np.abs(med - X)
    thr = d.mean(axis=1).mean() + 5 * d.std(axis=1, ddof=1).mean()
    out, nrep = despike(X, passes=((11, 5.0),))
    expected = np.where(d > thr, med, X)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert nrep.sum() == (d > thr).sum()


def test_column_spike_removal_fixes_a_column_band():
    rng = np.random.default_rng(4)
    cube = (0.3 + rng.normal(0, 1e-3, (40, 8, 60))).astype(np.float32)
    cube[:, 5, 30] *= 1.3  # a bad detector element: one band of one column
    out, flagged = remove_column_spikes(cube)
    assert flagged[5, 30] and flagged.sum() <= 3
    assert np.abs(out[:, 5, 30] - 0.3).max() < 0.01
    np.testing.assert_array_equal(out[:, :5], cube[:, :5])


def test_mask_bad_values_flags_main_bands_only():
    X = np.full((4, 10), 0.3, dtype=np.float32)
    X[0, 2] = 65535
    X[1, 3] = np.nan
    X[2, 9] = 5e3  # outside the main bands below
    main = np.arange(10) < 8
    out, bad = mask_bad_values(X, main=main)
    assert bad.tolist() == [True, True, False, False]
    assert np.isfinite(out).all() and out.max() < 1


def test_normr_and_minmax():
    X = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(normr(X), [[0.6, 0.8], [2 ** -0.5, 2 ** -0.5]])
    np.testing.assert_allclose(minmax_rows(np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])), [[0, 1, 0.5], [0, 0, 0]])


# --- the compiled (numba) engine against the direct computation and the numpy engine ---

numba_only = pytest.mark.skipif(not __import__("orbitml.crism._kernels", fromlist=["AVAILABLE"]).AVAILABLE,
                                reason="numba is not installed")


@numba_only
@pytest.mark.parametrize("k", [1, 3, 5, 7, 9, 11, 13])
@pytest.mark.parametrize("L", [1, 2, 5, 12, 13, 14, 40, 350])
def test_medfilt1_numba_matches_truncated_median(k, L):
    x = np.random.default_rng(7 * k + L).random((150, L)).astype(np.float32)
    got = medfilt1(x, k, engine="numba", threads=2)
    np.testing.assert_array_equal(got, ref_medfilt(x, k).astype(np.float32))


@numba_only
def test_numba_engine_refuses_what_it_cannot_do_and_auto_falls_back():
    x = np.random.default_rng(0).random((20, 40)).astype(np.float32)
    with pytest.raises(ValueError, match="windows up to 13"):
        medfilt1(x, 15, engine="numba")
    with pytest.raises(ValueError, match="engine must be"):
        medfilt1(x, 3, engine="fast")
    np.testing.assert_allclose(medfilt1(x, 15), ref_medfilt(x, 15), rtol=1e-6)  # auto: numpy path
    np.testing.assert_allclose(medfilt1(x.astype(np.float64), 5), ref_medfilt(x, 5), rtol=1e-6)


@numba_only
def test_despike_engines_agree():
    rng = np.random.default_rng(11)
    t = np.linspace(0, 1, 300)
    X = ((0.3 + 0.05 * np.sin(7 * t))[None, :] * rng.uniform(0.8, 1.2, (700, 1))
         + rng.normal(0, 2e-3, (700, 300))).astype(np.float32)
    spikes = rng.random(X.shape) < 3e-3
    X[spikes] *= rng.uniform(0.3, 2.0, spikes.sum()).astype(np.float32)
    sel = np.arange(300) < 220
    a, na = despike(X, stat_bands=sel, engine="numba", threads=2)
    b, nb = despike(X, stat_bands=sel, engine="numpy", threads=2)
    # both engines replace the same samples by the same medians (thresholds differ by rounding)
    np.testing.assert_array_equal(na, nb)
    np.testing.assert_array_equal(a, b)
    assert na.sum() >= spikes.sum() * 0.5


@pytest.mark.parametrize("engine", ["numpy", pytest.param("numba", marks=numba_only)])
def test_despike_threshold_ignores_non_finite_spectra(engine):
    rng = np.random.default_rng(3)
    X = rng.random((50, 30)).astype(np.float32)
    med = ref_medfilt(X, 11)
    d = np.abs(med - X)
    thr = d.mean(axis=1).mean() + 5 * d.std(axis=1, ddof=1).mean()
    Xn = np.vstack([X, np.full((1, 30), np.nan, np.float32)])
    out, nrep = despike(Xn, passes=((11, 5.0),), engine=engine)
    np.testing.assert_allclose(out[:50], np.where(d > thr, med, X), rtol=1e-6)
    assert nrep[:50].sum() == (d > thr).sum() and nrep[50] == 0
    assert np.isnan(out[50]).all()


def test_generated_median_kernels_are_up_to_date():
    import hashlib
    from pathlib import Path

    from orbitml.crism import _kernels, _netgen

    path = Path(_netgen.__file__).with_name("_median_nets.py")
    assert path.read_text() == _netgen.source(), "regenerate: python -m orbitml.crism._netgen > .../_median_nets.py"
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] == _kernels.NETS_DIGEST, "update NETS_DIGEST"


@pytest.mark.parametrize("engine", ["numpy", pytest.param("numba", marks=numba_only)])
def test_mask_bad_values_engines(engine):
    rng = np.random.default_rng(5)
    X = rng.random((30, 20, 12)).astype(np.float32)
    X[1, 2, 3] = np.nan
    X[4, 5, 11] = 65535
    X[6, 7, 0] = -np.inf
    X[8, 9, 10] = np.inf
    X[10, 11, 6] = 2e3
    main = np.arange(12) < 11
    good = np.isfinite(X) & (X <= 1e3)
    out, bad = mask_bad_values(X, main=main, engine=engine)
    expect = np.zeros((30, 20), bool)
    expect[1, 2] = expect[6, 7] = expect[8, 9] = expect[10, 11] = True  # (4, 5): 65535 outside the main bands
    np.testing.assert_array_equal(bad, expect)
    np.testing.assert_allclose(out[~good], X[good].mean(), rtol=1e-5)
    np.testing.assert_array_equal(out[good], X[good])


@pytest.mark.parametrize("engine", ["numpy", pytest.param("numba", marks=numba_only)])
def test_despike_rows_in_place_equals_despiking_the_subset(engine):
    rng = np.random.default_rng(8)
    X = rng.random((120, 60)).astype(np.float32)
    X[rng.random(X.shape) < 0.01] = 5.0
    keep = rng.random(120) < 0.7
    X[~keep, 3] = np.nan  # rows left out: never read for the statistics, never changed
    sub, nsub = despike(X[keep], engine=engine)
    Y = X.copy()
    out, nrep = despike(Y, copy=False, engine=engine, rows=keep)
    assert out is Y
    np.testing.assert_array_equal(Y[keep], sub)
    np.testing.assert_array_equal(Y[~keep], X[~keep])
    np.testing.assert_array_equal(nrep[keep], nsub)
    assert (nrep[~keep] == 0).all()


@numba_only
def test_column_spike_engines_agree():
    rng = np.random.default_rng(9)
    cube = (0.3 + rng.normal(0, 1e-3, (40, 12, 60))).astype(np.float32)
    cube[:, 3, 20] += 0.05  # a column spike: every pixel of column 3 at band 20
    cube[:, 3, 21] += 0.05  # and its neighbour, so replacement medians must use the original values
    cube[:, 7, 0] += 0.05  # at the band edge the window is truncated to three bands
    valid = rng.random((40, 12)) > 0.1
    a, fa = remove_column_spikes(cube, size=5, valid=valid, engine="numba")
    b, fb = remove_column_spikes(cube, size=5, valid=valid, engine="numpy")
    np.testing.assert_array_equal(fa, fb)
    assert fa[3, 20] and fa[3, 21] and fa[7, 0]
    assert np.abs(a[:, 3, 20:22] - 0.3).max() < 0.01
    np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("engine", ["numpy", pytest.param("numba", marks=numba_only)])
def test_column_spikes_stay_on_the_work_bands(engine):
    """The 3-band window at the last main band must not reach across the gap into the long bands."""
    rng = np.random.default_rng(11)
    cube = (0.3 + rng.normal(0, 1e-3, (30, 10, 60))).astype(np.float32)
    cube[..., 48] = 0.05  # "2.8 um" bands across the gap: the first one below its neighbours
    cube[..., 49:] = 0.2
    cube[:, 4, 20] += 0.05
    main = np.arange(60) < 48
    out, flagged = remove_column_spikes(cube, stat_bands=main, engine=engine)
    assert flagged[4, 20] and not flagged[:, 47].any() and not flagged[:, 48:].any()
    np.testing.assert_array_equal(out[..., 47:], cube[..., 47:])
    # the same flags and values as running on the main bands alone
    ref, fref = remove_column_spikes(np.ascontiguousarray(cube[..., :48]), engine=engine)
    np.testing.assert_array_equal(flagged[:, :48], fref)
    np.testing.assert_array_equal(out[..., :48], ref)
    # whereas on all 60 bands the step across the gap is "fixed" in every column and its deviation
    # raises each column's threshold so far that the real spike is missed
    _, fall = remove_column_spikes(cube, engine=engine)
    assert fall[:, 48].all() and not fall[4, 20]
