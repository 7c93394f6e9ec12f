"""The fast paths of the pipeline against the plain numpy forms they replace.

* ``scene_cube`` (row-wise band gather, float32 conversion and nodata -> NaN in one pass)
  against a whole-scene float copy (``to_float``) followed by a band gather;
* the fused min-max scaling and centring kernel against ``minmax_rows`` then centring;
* the ensemble's fused Student-t / softmax path against its numpy path, and ``rows=`` against
  scoring the gathered spectra.
"""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.crism import _kernels
from orbitml.crism.hbm import StudentTPlan
from orbitml.crism.pipeline import scene_cube
from orbitml.crism.preprocess import minmax_rows
from orbitml.errors import OrbitmlInputError
from orbitml.scene import make_scene, to_float
from tests.crism import _sim

numba_only = pytest.mark.skipif(not _kernels.AVAILABLE, reason="numba is not installed")


def _grouped_spectra(rng, sizes: dict, d: int):
    """Spectra ``(X, y, g)``: for each class ``k`` of ``sizes``, one image (id ``10 k + j``) of each
    listed size, spectra scattered around a per-image mean near ``k``."""
    X, y, g = [], [], []
    for k, ns in sizes.items():
        for j, n in enumerate(ns):
            X.append(rng.normal(k, 0.3, d) + rng.normal(0, 0.5, (n, d)))
            y += [k] * n
            g += [10 * k + j] * n
    return np.vstack(X), np.array(y), np.array(g)


@pytest.mark.parametrize("dtype,nodata", [(np.uint16, 65535), (np.int16, -1), (np.float32, 65535.0),
                                          (np.float64, None), (np.float32, np.nan), (np.int16, None)])
@pytest.mark.parametrize("threads", [1, 3])
def test_scene_cube_equals_float_copy_then_gather(dtype, nodata, threads):
    rng = np.random.default_rng(5)
    data = rng.integers(0, 3000, size=(9, 7, 5)).astype(dtype)
    if nodata is not None and np.isfinite(nodata):
        data[rng.random(data.shape) < 0.1] = nodata
    if np.issubdtype(dtype, np.floating):
        data[0, 1, 2], data[4, 3, 3], data[8, 6, 0] = np.nan, np.inf, -np.inf
    scene = make_scene(data, wavelength=np.linspace(1000, 2600, 9), nodata=nodata)
    bands = np.array([8, 0, 3, 3, 5])  # any order, repeats allowed
    cube, wl = scene_cube(scene, bands, threads=threads)
    ref = np.moveaxis(np.asarray(to_float(scene).values, dtype=np.float32), 0, -1)[:, :, bands]
    assert cube.dtype == np.float32 and cube.flags.c_contiguous
    np.testing.assert_array_equal(cube, ref)
    np.testing.assert_array_equal(wl, np.linspace(1000, 2600, 9)[bands])
    if nodata is not None and np.isfinite(nodata):
        assert np.isnan(cube).any()
    full, _ = scene_cube(scene)
    np.testing.assert_array_equal(full, np.moveaxis(np.asarray(to_float(scene).values), 0, -1))


def _plan(dtype, K=3, d=11, seed=1):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(K, d, d))
    S = A @ A.transpose(0, 2, 1) + d * np.eye(d)
    L = np.linalg.cholesky(S)
    Linv = np.linalg.inv(L)
    mean = rng.normal(size=(K, d))
    return StudentTPlan(mean, Linv, np.log(np.diagonal(L, axis1=1, axis2=2)).sum(1), rng.uniform(5, 50, K),
                        dtype), (mean, S)


@numba_only
@pytest.mark.parametrize("pdt", [np.float32, np.float64])
@pytest.mark.parametrize("xdt", [np.float32, np.float64])
@pytest.mark.parametrize("sub", [[0, 2, 4, 5, 9, 11, 19], [2, 3, 4, 5, 6, 7, 8]])  # gathered, a window
def test_minmax_kernel_equals_numpy_bit_for_bit(pdt, xdt, sub):
    plan, _ = _plan(pdt, d=7)
    rng = np.random.default_rng(2)
    X = rng.random((40, 20)).astype(xdt)
    X[3, 5], X[4, 2], X[6, 4] = np.nan, np.inf, -np.inf
    X[5] = 0.5  # constant row: maps to 0
    sub = np.array(sub)
    rows = np.array([7, 3, 4, 5, 6, 0, 39, 12])
    got = plan.minmax_rows(X, rows, 1, 7, sub)
    with np.errstate(invalid="ignore"):
        ref = minmax_rows(X[rows[1:7]][:, sub]).astype(pdt) - plan.centre
    assert got.dtype == pdt
    np.testing.assert_array_equal(got, ref)
    assert np.isnan(got[0]).all() and np.isnan(got[3]).all()  # rows 3 (NaN) and 6 (-inf: (x - lo) / inf)
    np.testing.assert_array_equal(got[2], -plan.centre)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("K,d", [(3, 11), (1, 16), (4, 3), (5, 31), (13, 54), (3, 55), (1, 100)])
@pytest.mark.parametrize("compiled", [True, False])
def test_plan_log_density_equals_direct_formula(dtype, tol, K, d, compiled, monkeypatch):
    """The block-triangular products (blocks of 4 whitened coordinates for 13 classes, 8 for
    fewer; a last block narrower) and both sums of squares (numba, numpy) give scipy's density."""
    from scipy.stats import multivariate_t

    if compiled and not _kernels.AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(_kernels, "AVAILABLE", compiled)
    plan, (mean, S) = _plan(dtype, K, d)
    assert plan.edges[-1] == d and (plan.edges.size > 2) == (d > plan.width)
    X = np.random.default_rng(3).normal(size=(300, d)) * 2
    ll = plan(X)
    for k in range(K):
        ref = multivariate_t(mean[k], S[k], df=plan.dof[k]).logpdf(X)
        np.testing.assert_allclose(ll[:, k], ref, rtol=tol, atol=tol)


@numba_only
def test_fused_ensemble_path_equals_numpy_path_and_rows_equal_gather(monkeypatch):
    clf, _ = _sim.model()
    im = _sim.image()
    X = im["cube"].reshape(-1, im["cube"].shape[2])[:, :clf.wavelengths_.size].astype(np.float32)
    rows = np.flatnonzero(np.arange(X.shape[0]) % 3 != 1)[::-1].copy()
    Q, s = clf.predict_scores(X, rows=rows, threads=2)
    Q1, s1 = clf.predict_scores(np.ascontiguousarray(X[rows]), threads=1)
    np.testing.assert_array_equal(Q, Q1)  # rows= gathers the same spectra; the thread count changes nothing
    np.testing.assert_array_equal(s, s1)
    # BLAS may sum a short last chunk in another order: float32 products of log-likelihoods of a few
    # hundred differ by ~1e-5, which moves a probability near a two-class tie by a few 1e-6 (seen on
    # one CPU: 3.4e-6); a wrong gather or chunk boundary would move them by order 1
    Q2, s2 = clf.predict_scores(X, rows=rows, chunk=700)
    np.testing.assert_allclose(Q2, Q, atol=5e-5, rtol=0)
    np.testing.assert_allclose(s2, s, rtol=1e-6, atol=1e-4)  # scores of ~100 summed in float32
    # float64 spectra take the row-wise scaling (not the transposed chunk): the same up to the
    # float32 rounding of the scaled values
    Q3, s3 = clf.predict_scores(X.astype(np.float64), rows=rows)
    np.testing.assert_allclose(Q3, Q, atol=1e-4, rtol=0)
    np.testing.assert_allclose(s3, s, rtol=1e-5, atol=1e-3)
    monkeypatch.setattr(_kernels, "AVAILABLE", False)
    Qn, sn = clf.predict_scores(X[rows])
    # both sum the float32 squared distances (the numpy path with einsum), in different orders:
    # log-likelihoods agree to ~1e-6 relative, probabilities to ~1e-5
    np.testing.assert_allclose(Q, Qn, atol=1e-4, rtol=0)
    np.testing.assert_allclose(s, sn, rtol=1e-6, atol=1e-4)
    assert (Q.argmax(1) == Qn.argmax(1)).mean() > 0.999
    codes, conf = clf.predict(X, rows=rows)
    monkeypatch.setattr(_kernels, "AVAILABLE", True)
    c2, f2 = clf.predict(np.ascontiguousarray(X[rows]))
    assert (codes == c2).mean() > 0.999 and np.allclose(conf, f2, atol=1e-4, rtol=0)


def test_hbm_fit_with_single_spectrum_images_equals_group_by_group_formulas():
    """The vectorised fit (one product per class, one for the prior) against the per-image
    definitions, with images holding one spectrum (no covariance: left out of S0) and a class
    made only of such images (left out of the S0 average, kept in mu0)."""
    from orbitml.crism.hbm import HBMClassifier

    rng = np.random.default_rng(4)
    sizes = {0: [6, 1, 9], 1: [1, 1], 2: [4, 7, 1, 3], 3: [5, 5, 1]}  # class 3: equal sizes, one weight
    X, y, g = _grouped_spectra(rng, sizes, 5)
    perm = rng.permutation(y.size)  # the fit must not rely on the input order
    m = HBMClassifier(kappa0=1.0, kappa1=100.0).fit(X[perm], y[perm], g[perm])
    groups = {k: [X[(y == k) & (g == 10 * k + j)] for j in range(len(ns))] for k, ns in sizes.items()}
    mu0 = np.mean([np.mean([Xg.mean(0) for Xg in groups[k]], axis=0) for k in sizes], axis=0)
    S0 = np.mean([np.mean([np.cov(Xg.T) for Xg in groups[k] if len(Xg) > 1], axis=0) for k in (0, 2, 3)],
                 axis=0)
    np.testing.assert_allclose(m.mu0_, mu0, rtol=1e-12)
    np.testing.assert_allclose(m.S0_, S0, rtol=1e-12)
    psi = S0 * 1.0  # m - d - 1 with m = d + 2
    for i, k in enumerate(sizes):
        n = np.array([len(Xg) for Xg in groups[k]], float)
        xb = np.array([Xg.mean(0) for Xg in groups[k]])
        C = sum((Xg - Xg.mean(0)).T @ (Xg - Xg.mean(0)) for Xg in groups[k])
        kj = n * 100 / (n + 100)
        kap = kj.sum() + 1
        kbar = kap * 100 / (kap + 100)
        v = n.sum() - n.size + 3
        assert m.dofs_[i] == v and m.n_images_[i] == n.size and m.n_samples_[i] == n.sum()
        np.testing.assert_allclose(m.means_[i], (kj @ xb + mu0) / kap, rtol=1e-12)
        np.testing.assert_allclose(m.scales_[i], (psi + C) * (kbar + 1) / (kbar * v), rtol=1e-11)


@numba_only
def test_softmax_kernels_keep_nan_rows_and_floor_far_classes():
    ll = np.array([[0.0, -5.0, -2000.0], [1.0, np.nan, 0.0], [-3.0, -1.0, -1.0]])
    u = (ll - np.array([0.0, 1.0, 2.0])) / -np.array([1.0, 2.0, 4.0])  # const - coef * u == ll
    score = np.zeros(3)
    uT = np.ascontiguousarray(u.T)  # the kernels work classes first, pixels last
    _kernels._loglik_shift_max_t(uT, np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 4.0]), score)
    u = uT.T
    np.testing.assert_allclose(score[[0, 2]], [0.0, -1.0])
    assert np.isnan(score[1]) and np.isnan(u[1]).all()
    np.testing.assert_allclose(u[0], [0.0, -5.0, -700.0])
    ST = np.zeros((4, 3))
    _kernels._exp_weighted_add_t(uT, np.array([3, 0, 1]), np.array([0.5, 1.0, 2.0]), ST)
    S = ST.T
    e = np.exp([0.0, -5.0])
    np.testing.assert_allclose(S[0], [e[1] / e.sum(), 2.0 * np.exp(-700.0) / e.sum(), 0.0, 0.5 / e.sum()],
                               rtol=1e-12)
    p = np.exp([-2.0, 0.0, 0.0]) / np.exp([-2.0, 0.0, 0.0]).sum()
    np.testing.assert_allclose(S[2], [p[1], 2.0 * p[2], 0.0, 0.5 * p[0]], rtol=1e-12)
    assert np.isnan(S[1, [0, 1, 3]]).all()


@numba_only
def test_simd_exp_and_log1p_equal_numpy_to_two_ulp():
    """The ensemble's own vectorised float64 exp (on [-700, 0]) and log1p (on [0, inf]) against
    numpy's, including the ends, tiny values (log1p's rounding correction), inf and NaN."""
    rng = np.random.default_rng(0)
    v = np.r_[-rng.uniform(0, 700, 4000), -(10.0 ** rng.uniform(-300, 2, 2000)), 0.0, -0.0, -700.0,
              -np.log(2) / 2, -np.log(2) / 2 - 1e-12, -np.log(2) * 1009.5]
    e = v.copy()
    _kernels._exp_inplace(e, np.empty_like(e))
    ref = np.exp(v)
    assert np.max(np.abs(e - ref) / ref) < 4.5e-16
    u = np.r_[rng.uniform(0, 5, 2000), 10.0 ** rng.uniform(-320, 300, 4000), 0.0, 5e-324, 2.0 ** -53,
              np.sqrt(2) - 1, 1.0, 2.0 ** 1023]
    lg = u.copy()
    _kernels._log1p_inplace(lg, np.empty_like(lg), np.empty_like(lg))
    ref = np.log1p(u)
    pos = ref > 0
    assert np.max(np.abs(lg[pos] - ref[pos]) / ref[pos]) < 4.5e-16 and (lg[~pos] == 0).all()
    special = np.array([np.inf, np.nan])
    _kernels._log1p_inplace(special, np.empty(2), np.empty(2))
    assert special[0] == np.inf and np.isnan(special[1])
    nan = np.array([np.nan, -1.0])
    _kernels._exp_inplace(nan, np.empty(2))
    assert np.isnan(nan[0]) and nan[1] == np.exp(-1.0)


@numba_only
def test_fit_minmax_equals_fit_on_scaled_subset_bit_for_bit():
    """The compiled pass (gather, min-max scaling, group means, centring) gives exactly the
    statistics of ``fit(minmax_rows(X[:, sub]))``; unsorted rows take that path; a non-finite
    spectrum is refused by both."""
    from orbitml.crism.hbm import GroupPlan, HBMClassifier

    rng = np.random.default_rng(5)
    n, L = 600, 40
    y = rng.integers(0, 4, n)
    g = rng.integers(0, 6, n)
    X = (1 + 0.05 * rng.normal(size=(n, L))).astype(np.float32)
    X[7] = 0.5  # a constant spectrum scales to 0
    sub = np.r_[0:L:3, 5, 6]
    order = np.lexsort((g, y))
    Xs, ys, gs = X[order], y[order], g[order]
    plan = GroupPlan(ys, gs)
    assert plan.order is None
    a = HBMClassifier(compute_dtype="float32").fit(minmax_rows(Xs[:, sub]), ys, plan=plan)
    b = HBMClassifier(compute_dtype="float32").fit_minmax(Xs, sub, ys, plan)
    for attr in ("means_", "scales_", "S0_", "mu0_", "dofs_"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    r = HBMClassifier(compute_dtype="float32").fit_minmax(X, sub, ys, plan, rows=order)  # read through order
    np.testing.assert_array_equal(r.scales_, a.scales_)
    np.testing.assert_array_equal(r.means_, a.means_)
    p2 = GroupPlan(y, g)  # rows not in (class, image) order: the numpy path
    c = HBMClassifier(compute_dtype="float32").fit_minmax(X, sub, y, p2)
    np.testing.assert_allclose(c.scales_, a.scales_, rtol=1e-9, atol=1e-15)
    Xs[3, sub[2]] = np.nan
    with pytest.raises(OrbitmlInputError, match="non-finite"):
        HBMClassifier().fit_minmax(Xs, sub, ys, plan)


def test_merged_statistics_give_the_fit_on_all_images():
    """Sufficient statistics of two disjoint sets of images, merged, give the posterior of one fit on
    all of them: unequal and single-spectrum groups, a class only in one part, parts in any order."""
    from orbitml.crism.hbm import HBMClassifier

    X, y, g = _grouped_spectra(np.random.default_rng(11), {0: [6, 1, 9, 4], 1: [3, 3, 3], 2: [4, 7, 1], 3: [5, 2]}, 6)
    whole = HBMClassifier().fit(X, y, g)
    part_b = np.isin(g, [1, 2, 11, 20])  # images of classes 0, 1 and 2; class 3 only in part A
    a = HBMClassifier().fit(X[~part_b], y[~part_b], g[~part_b])
    b = HBMClassifier().fit(X[part_b], y[part_b], g[part_b], stats_only=True)
    assert not hasattr(b, "means_") and 3 not in b.stats_.classes
    for merged in (a.stats_.merge(b.stats_), b.stats_.merge(a.stats_)):
        m = HBMClassifier.from_stats(merged)
        np.testing.assert_array_equal(m.classes_, whole.classes_)
        np.testing.assert_array_equal(m.dofs_, whole.dofs_)
        np.testing.assert_array_equal(m.n_images_, whole.n_images_)
        for attr in ("means_", "scales_", "S0_", "mu0_"):
            np.testing.assert_allclose(getattr(m, attr), getattr(whole, attr), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(m.predict_log_likelihood(X), whole.predict_log_likelihood(X), rtol=1e-10)
    with pytest.raises(OrbitmlInputError, match="bands"):
        a.stats_.merge(HBMClassifier().fit(X[:, :3], y, g).stats_)


def test_ensemble_refit_by_merging_equals_refit_from_scratch():
    """The default training path adds the held-out images to the held-in models by merging
    statistics; the models equal those of a fit on all images from scratch."""
    from orbitml.crism import bands as cb
    from orbitml.crism import classes as cc
    from orbitml.crism.ensemble import CrismClassifier
    from orbitml.crism.preprocess import despike

    d = _sim.labelled()
    clf = CrismClassifier().fit(d["pixspec"], d["pixlabs"], d["pixims"], d["wavelengths"])
    assert clf.heldout_images_ and not hasattr(clf.models_[0], "stats_")
    main = cb.main_band_mask(np.asarray(d["wavelengths"], float))
    y = cc.to_train_codes(d["pixlabs"].ravel())
    keep = np.isin(y, list(cc.CLASSES))
    X, _ = despike(np.ascontiguousarray(d["pixspec"][keep][:, main], dtype=np.float32), clf.settings.despike_passes)
    yk = np.searchsorted(clf.classes_, y[keep])
    scratch = clf._fit_models(X, yk, d["pixims"].ravel()[keep])
    for m, r in zip(clf.models_, scratch, strict=True):
        np.testing.assert_array_equal(m.dofs_, r.dofs_)
        np.testing.assert_allclose(m.means_, r.means_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(m.scales_, r.scales_, rtol=1e-9, atol=1e-12)


@numba_only
def test_model_probs_fused_equals_numpy_path(monkeypatch):
    """Per-model probabilities and OOD scores for the weights, temperature and thresholds: the fused
    kernels agree with the numpy softmax path."""
    clf, _ = _sim.model()
    d = _sim.labelled(seed=3, n_images=3)
    X = np.ascontiguousarray(d["pixspec"][:, :248], dtype=np.float32)
    rows = np.arange(0, X.shape[0], 3)
    P, s = clf._model_probs(clf.models_, X, rows)
    assert P.shape == (len(clf.models_), clf.classes_.size, rows.size)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-9)
    monkeypatch.setattr(_kernels, "AVAILABLE", False)
    P2, s2 = clf._model_probs(clf.models_, X, rows)
    np.testing.assert_allclose(P, P2, atol=2e-5)
    np.testing.assert_allclose(s, s2, rtol=1e-5, atol=1e-3)  # float32 sums of 15 log-likelihoods


@numba_only
def test_one_call_ensemble_chunk_equals_the_per_model_kernels_exactly():
    """The compiled one-call evaluation of a chunk (every model, BLAS products inside) gives the
    per-model plan methods and kernels' values bit for bit: the same arithmetic in the same order."""
    clf, _ = _sim.model()
    d = _sim.labelled(seed=4, n_images=3)
    X = np.ascontiguousarray(d["pixspec"][:, :248], dtype=np.float32)
    X[7, 11] = np.nan  # a NaN spectrum stays NaN in both
    rows = np.arange(1, X.shape[0], 2)[:300]
    m = rows.size
    K = clf.classes_.size
    plans = [mod.plan() for mod in clf.models_]
    subs = [np.asarray(sub, dtype=np.int64) for sub in clf.subsets_]
    cls = [np.asarray(mod.classes_, dtype=np.int64) for mod in clf.models_]
    wts = [np.ascontiguousarray(clf.weights_[i, c]) for i, c in enumerate(cls)]
    XT = clf._transposed_chunk(X, rows, 0, m)
    ref, sref = np.zeros((K, m)), np.zeros(m)
    per_ref = np.zeros((len(plans), K, m))
    for i, (plan, sub, c, w) in enumerate(zip(plans, subs, cls, wts, strict=True)):
        ll = plan.log1p_terms_t(plan.minmax_t(XT, sub, m), overwrite=True, centred=True)
        _kernels._loglik_shift_max_t(ll, plan.const, plan.coef, sref)
        E = ll.copy()
        _kernels._exp_weighted_add_t(ll, c, w, ref)
        _kernels._exp_weighted_add_t(E, c, np.ones(c.size), per_ref[i])
    ST, sc = np.zeros((1, K, m)), np.zeros(m)
    _kernels._ensemble_chunk(XT, m, *clf._packed_plans(plans, subs, cls, wts), False, ST, sc)
    np.testing.assert_array_equal(ST[0], ref)
    np.testing.assert_array_equal(sc, sref)
    assert np.isnan(sc[rows == 7]).all() and np.isfinite(np.delete(sc, np.flatnonzero(rows == 7))).all()
    ones = [np.ones(c.size) for c in cls]
    per, sc2 = np.zeros((len(plans), K, m)), np.zeros(m)
    _kernels._ensemble_chunk(XT, m, *clf._packed_plans(plans, subs, cls, ones), True, per, sc2)
    np.testing.assert_array_equal(per, per_ref)
    np.testing.assert_array_equal(sc2, sref)


@numba_only
@pytest.mark.parametrize("L", [28, 41, 248])
def test_edge_medians_kernel_equals_np_median(L):
    """The bland model's truncated 27-band windows at both ends: sorted-buffer updates give
    np.median's values exactly (odd and even counts, ties)."""
    rng = np.random.default_rng(L)
    X = rng.normal(size=(50, L))
    X[:10] = np.round(X[:10], 1)  # ties
    out = np.full_like(X, np.nan)
    _kernels._median_edges_rows(X, 13, out)
    for c in list(range(13)) + list(range(L - 13, L)):
        np.testing.assert_array_equal(out[:, c], np.median(X[:, max(0, c - 13):c + 14], axis=1))
    assert np.isnan(out[:, 13:L - 13]).all()  # the interior is left alone
