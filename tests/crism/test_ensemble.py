"""Ensemble training: held-out weights and temperature, thresholds, persistence, cache key."""

import json

import numpy as np
import pytest

from orbitml.crism import classes as cc
from orbitml.crism import train as ct
from orbitml.crism.ensemble import (
    CrismClassifier,
    _fit_weights,
    apply_temperature,
    expected_calibration_error,
    split_images,
)
from orbitml.crism.matfile import MatDataset
from orbitml.crism.settings import CrismSettings
from tests.crism import _sim


def test_ece_known_answer():
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.6, 0.6])
    correct = np.array([1, 1, 1, 0, 1, 0])
    # bins: 0.9 -> acc 0.75 (gap 0.15, weight 4/6); 0.6 -> acc 0.5 (gap 0.1, weight 2/6)
    assert expected_calibration_error(conf, correct) == pytest.approx(0.15 * 4 / 6 + 0.1 * 2 / 6)


def test_split_images_keeps_every_class_in_training():
    d = _sim.labelled()
    y, g = d["pixlabs"], d["pixims"]
    held = split_images(y, g, 0.5, seed=3)
    assert 0 < held.size <= 5
    train = ~np.isin(g, held)
    assert set(np.unique(y[train])) == set(np.unique(y))
    assert np.array_equal(held, split_images(y, g, 0.5, seed=3))


def _split_reference(y, groups, fraction, seed):
    """The rule written out over (image, class) pairs: shuffle the sorted image ids, hold an image
    out while every class in it keeps another training image."""
    rng = np.random.default_rng(seed)
    imgs = np.unique(groups)
    rng.shuffle(imgs)
    pairs = {(gv, yv) for gv, yv in zip(groups.tolist(), y.tolist(), strict=True)}
    left = {}
    for _, yv in pairs:
        left[yv] = left.get(yv, 0) + 1
    held = []
    for im in imgs.tolist():
        if len(held) >= int(round(fraction * imgs.size)):
            break
        cls_in = [yv for gv, yv in pairs if gv == im]
        if all(left[k] > 1 for k in cls_in):
            held.append(im)
            for k in cls_in:
                left[k] -= 1
    return np.array(held, dtype=groups.dtype)


@pytest.mark.parametrize("strings", [False, True])
def test_split_images_matches_the_pairwise_rule(strings):
    rng = np.random.default_rng(5)
    for _ in range(40):
        n, n_img, n_cls = int(rng.integers(1, 300)), int(rng.integers(1, 15)), int(rng.integers(1, 6))
        g = rng.integers(0, n_img, n) * 7 + 100
        g = np.array([f"im{v}" for v in g]) if strings else g
        y = rng.integers(0, n_cls, n) * 3
        frac, seed = float(rng.uniform(0, 1)), int(rng.integers(0, 1000))
        held = split_images(y, g, frac, seed)
        assert held.dtype == g.dtype
        assert np.array_equal(held, _split_reference(y, g, frac, seed))


def test_weights_prefer_the_informative_model():
    rng = np.random.default_rng(0)
    n, K = 600, 3
    yk = rng.integers(0, K, n)
    good = np.full((n, K), 0.05)
    good[np.arange(n), yk] = 0.9
    noise = rng.dirichlet(np.ones(K), n)
    W = _fit_weights(np.stack([noise, good]), yk, K)
    np.testing.assert_allclose(W.sum(0), 1)
    assert np.all(W[1] > 0.8)


def test_trained_classifier_properties():
    clf, _ = _sim.model()
    d = _sim.labelled()
    assert clf.weights_.shape == (15, clf.classes_.size)
    np.testing.assert_allclose(clf.weights_.sum(0), 1)
    assert clf.calibration_["ece_after"] <= clf.calibration_["ece_before"] + 1e-9
    assert set(clf.classes_) == set(_sim.CODES)
    # thresholds: 0.7 for classes seen in fewer than 5 images, else 0.5
    for k in range(clf.classes_.size):
        assert clf.thresholds_[k] == (0.7 if clf.n_images_[k] < 5 else 0.5)
    test = _sim.labelled(seed=7, n_images=4)
    P = clf.predict_proba(test["pixspec"][:, :248])
    acc = (clf.classes_[P.argmax(1)] == cc.to_train_codes(test["pixlabs"])).mean()
    assert acc > 0.8  # new images, never seen
    codes, conf = clf.predict(test["pixspec"][:, :248])
    low = conf < clf.thresholds_[P.argmax(1)]
    assert np.all(codes[low] == 0) and np.all(codes[~low] > 0)
    assert d["pixspec"].shape[1] == 350


def test_temperature_scaling_is_a_monotone_sharpening():
    Q = np.array([[0.6, 0.3, 0.1]])
    sharp = apply_temperature(Q, 0.5)
    np.testing.assert_allclose(sharp, Q**2 / (Q**2).sum())
    assert apply_temperature(Q, 1.0) == pytest.approx(Q)


def test_save_load_round_trip_without_pickle(tmp_path):
    clf, bm = _sim.model()
    clf.save(tmp_path / "m", bland=bm, extra={"cache_key": "abc"})
    with np.load(tmp_path / "m" / "model.npz", allow_pickle=False) as a:
        assert all(a[k].dtype != object for k in a.files)
    clf2, bm2, card = CrismClassifier.load(tmp_path / "m")
    X = _sim.labelled(seed=7, n_images=4)["pixspec"][:200, :248]
    np.testing.assert_array_equal(clf.predict_proba(X), clf2.predict_proba(X))
    assert card["cache_key"] == "abc" and card["settings"] == clf.settings.model_dump(mode="json")
    assert bm2 is not None
    (tmp_path / "m" / "model.json").write_text("{not json")
    from orbitml.errors import OrbitmlInputError

    with pytest.raises(OrbitmlInputError, match="JSON"):
        CrismClassifier.load(tmp_path / "m")


def test_same_seed_same_model_bit_for_bit():
    d = _sim.labelled()
    a = CrismClassifier(CrismSettings(subsets="single", seed=5)).fit(d["pixspec"], d["pixlabs"], d["pixims"],
                                                                      d["wavelengths"])
    b = CrismClassifier(CrismSettings(subsets="single", seed=5)).fit(d["pixspec"], d["pixlabs"], d["pixims"],
                                                                      d["wavelengths"])
    X = d["pixspec"][:100]
    np.testing.assert_array_equal(a.predict_proba(X[:, :248]), b.predict_proba(X[:, :248]))


def _ds(d):
    return MatDataset(d["pixspec"], d["pixims"].astype(int), list(d["im_names"]), d["pixlabs"].astype(int))


def test_cache_key_follows_content_and_settings(tmp_path):
    d = _sim.labelled()
    s = CrismSettings(subsets="single")
    lab = _ds(d)
    k1 = ct.cache_key(lab, None, s)
    assert k1 == ct.cache_key(_ds({**d, "pixspec": d["pixspec"].copy()}), None, s)
    changed = d["pixspec"].copy()
    changed[0, 0] += 1e-3
    assert ct.cache_key(_ds({**d, "pixspec": changed}), None, s) != k1
    assert ct.cache_key(lab, None, CrismSettings(subsets="single", kappa1=50)) != k1
    out, trained = ct.train(lab, None, s, tmp_path / "m")
    assert trained and json.loads((out / "model.json").read_text())["cache_key"] == k1
    _, trained = ct.train(lab, None, s, tmp_path / "m")
    assert not trained  # reused: same content and settings
    _, trained = ct.train(_ds({**d, "pixspec": changed}), None, s, tmp_path / "m")
    assert trained  # same name, new content: retrained
