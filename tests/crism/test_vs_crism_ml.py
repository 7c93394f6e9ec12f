"""orbitml's CRISM pipeline against crism_ml itself, run here on identical inputs.

crism_ml (Plebani et al. 2022; Apache-2.0) is peer code in ``../shared/anchors/crism_ml``; it is put
on ``sys.path`` only inside this test (never imported by orbitml).  The tests skip when it is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from orbitml.crism import bands as cb
from orbitml.crism import classes as cc
from orbitml.crism import simdata as sd
from orbitml.crism.pipeline import ratio_cube
from orbitml.crism.preprocess import despike, minmax_rows
from orbitml.crism.ratio import column_ratio
from tests.crism import _sim

ANCHOR = Path(__file__).resolve().parents[2] / ".." / "shared" / "anchors" / "crism_ml"


@pytest.fixture(scope="module")
def crism_ml():
    if not (ANCHOR / "crism_ml" / "preprocessing.py").is_file():
        pytest.skip(f"crism_ml peer code not found at {ANCHOR}")
    pytest.importorskip("joblib")
    sys.path.insert(0, str(ANCHOR.resolve()))
    try:
        import crism_ml.models as cm
        import crism_ml.preprocessing as cp
        import crism_ml.train as ct
    finally:
        sys.path.remove(str(ANCHOR.resolve()))
    return cp, cm, ct


@pytest.fixture(scope="module")
def shared_run():
    """The same 110 x 24 x 350 image through orbitml's whole ratio pipeline."""
    im = sd.simulate_image(rows=110, cols=24, codes=(6, 14, 19, 30), seed=7, n_bad=0)
    cube = im["cube"]
    # detector-column spikes at a few main bands (what column-spike removal is for)
    for c, b, f in ((3, 40, 1.1), (11, 120, 0.9), (17, 200, 1.1), (20, 244, 1.1)):
        cube[:, c, b] *= f
    wl = im["wavelengths"]
    assert wl.size == cb.N_ALL
    clf, bm = _sim.model()
    main = cb.main_band_mask(wl)
    pre = ratio_cube(cube.copy(), wl, main, bm, clf.settings)
    return cube, wl, pre, clf


def test_column_spike_flags_and_values_equal_crism_ml(crism_ml, shared_run):
    cp, _, _ = crism_ml
    cube, wl, pre, _ = shared_run
    h, w, nb = cube.shape
    if_, rem = cp.filter_bad_pixels(cube.reshape(-1, nb), copy=True)
    assert not rem.any()
    # crism_ml's own flag rule (remove_spikes_column), with its own median filter
    col_avg = np.mean(if_.reshape(h, w, nb)[..., :cp.N_BANDS], axis=0)
    diff = np.abs(col_avg - cp.medfilt1(col_avg, 3))
    ind = diff > np.mean(diff, axis=-1, keepdims=True) + 5 * np.std(diff, ddof=1, axis=-1, keepdims=True)
    assert ind[3, 40] and ind[11, 120] and ind[17, 200]
    np.testing.assert_array_equal(pre.column_flags[:, :cp.N_BANDS], ind)
    assert not pre.column_flags[:, cp.N_BANDS:].any()
    if1 = cp.remove_spikes_column(if_.reshape(h, w, nb), 3, 5)
    np.testing.assert_array_equal(pre.unratioed, if1)


def test_ratio_and_despiking_equal_crism_ml(crism_ml, shared_run):
    cp, _, _ = crism_ml
    _, _, pre, _ = shared_run
    X, B = pre.unratioed, pre.blandness
    ours, _ = column_ratio(X, B)
    theirs = cp.ratio(X.copy(), B.copy())
    ok = np.isfinite(ours).all(-1)
    assert ok.mean() > 0.95
    np.testing.assert_array_equal(ok, theirs.any(-1))  # crism_ml writes 0 where it cannot ratio
    # the same three denominator rows: equal up to the rounding of the three-row mean
    np.testing.assert_allclose(ours[ok], theirs[ok], rtol=1e-6, atol=0)
    # despiking on identical input: bit-identical, and the pipeline's ratioed cube is that result
    flat = ours[ok]
    mine, nrep = despike(flat, stat_bands=np.arange(flat.shape[1]) < cp.N_BANDS)
    ref = cp.remove_spikes(flat.copy(), ((11, 5), (7, 5), (3, 5)))
    assert nrep.sum() > 0
    np.testing.assert_array_equal(mine, ref)
    np.testing.assert_array_equal(pre.ratioed[ok], mine)


def test_hbm_classes_equal_crism_ml(crism_ml, shared_run):
    cp, cm, ct = crism_ml
    _, _, pre, clf = shared_run
    # crism_ml's band subsets are ours, index for index
    _, masks = ct.feat_masks()
    assert len(masks) == len(clf.subsets_)
    for a, b in zip(masks, clf.subsets_, strict=True):
        np.testing.assert_array_equal(a, b)
    fin0, _ = ct.feat_masks()
    np.testing.assert_array_equal(fin0[0], cb.bland_subset(cb.nominal_wavelengths(cb.N_MAIN)))
    # the classifier's own training input, despiked by both
    d = _sim.labelled()
    main = cb.main_band_mask(d["wavelengths"])
    y = cc.to_train_codes(d["pixlabs"].ravel())
    Xtr, _ = despike(d["pixspec"][:, main].astype(np.float32))
    np.testing.assert_array_equal(Xtr, cp.remove_spikes(d["pixspec"][:, main].astype(np.float32)))
    yk = np.searchsorted(clf.classes_, y)
    g = d["pixims"].ravel()
    R = pre.ratioed[pre.valid][:, :cp.N_BANDS]
    for i in (0, 1, 2, 3, 4, 14):  # the four interleaved subsets and two windows
        sub = clf.subsets_[i]
        hbm = cm.HBM(only_class=True, prior=cm.HBMPrior())
        hbm.fit(cp.norm_minmax(Xtr[:, sub], axis=1), yk, g)
        theirs = hbm.predict(cp.norm_minmax(R[:, sub], axis=1))
        ll = clf.models_[i].predict_log_likelihood(minmax_rows(R[:, sub]))
        ours = clf.models_[i].classes_[ll.argmax(1)]
        assert np.unique(theirs).size > 1
        np.testing.assert_array_equal(ours, theirs)
