"""Hit categorisation: rule baseline and the learned forest (orbitml.cosmic.categorise)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from orbitml.cosmic.categorise import (
    CLASSES,
    HitClassifier,
    default_classifier,
    model_matrix,
    rule_classes,
    simulate_labelled_hits,
)
from orbitml.cosmic.features import hit_table
from orbitml.errors import OrbitmlInputError


@pytest.fixture(scope="module")
def data():
    train = simulate_labelled_hits(8, (192, 192), seed=0)
    test = simulate_labelled_hits(4, (192, 192), seed=1)
    clf = HitClassifier(n_estimators=30, random_state=0).fit(train, train["truth"])
    return train, test, clf


def test_training_data_has_all_kinds(data):
    train, _, _ = data
    counts = train["truth"].value_counts()
    for c in ("spot", "track", "worm", "star"):
        assert counts.get(c, 0) >= 10, counts


def test_array_forest_matches_sklearn(data):
    _, test, clf = data
    p = clf.predict_proba(test)
    ref = clf.forest_.predict_proba(model_matrix(test))
    assert np.allclose(p[:, clf.forest_.classes_], ref, atol=1e-12)
    assert np.allclose(p.sum(axis=1), 1.0)


def test_forest_accuracy_beats_chance_and_separates_cosmics(data):
    _, test, clf = data
    pred = clf.predict(test)
    truth = test["truth"].to_numpy()
    cosmic = np.isin(truth, ["spot", "track", "worm"])
    assert np.mean(np.isin(pred, ["spot", "track", "worm"]) == cosmic) > 0.95
    for c in ("spot", "track"):
        assert np.mean(pred[truth == c] == c) > 0.8
    assert np.mean(pred == truth) > 0.85


def test_rules_on_known_shapes():
    bg = np.full((80, 40), 100.0, np.float32)
    sci = bg.copy()
    sci[5:60, 20] += 400.0 + np.arange(55)  # a hot column segment
    sci[40, 5] += 3000.0  # a single-pixel spot
    sci[70, 5:12] += 900.0 + 37.0 * np.arange(7)  # a horizontal track
    sci[10:16, 33] = 1.5e5  # a saturation plateau
    mask = sci > 300
    t = hit_table(sci, bg, mask).sort_values(["x", "y"]).reset_index(drop=True)
    names = rule_classes(t)

    def at(x, y):
        return names[int(np.argmin(np.hypot(t["x"] - x, t["y"] - y)))]

    assert at(5, 40) == "spot"
    assert at(8, 70) == "track"
    assert at(20, 32) == "hot_column"
    assert at(33, 12) == "bleed"
    p = HitClassifier("rules").predict_proba(t)
    assert p.shape == (4, len(CLASSES)) and np.allclose(p.sum(axis=1), 1.0)


def test_save_load_round_trip(tmp_path, data):
    _, test, clf = data
    path = clf.save(tmp_path / "m.safetensors")
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["classes"] == list(CLASSES)
    back = HitClassifier.load(path)
    assert np.array_equal(back.predict_proba(test), clf.predict_proba(test))
    card["features"] = ["n_pixels"]
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(OrbitmlInputError, match="does not match"):
        HitClassifier.load(path)
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(OrbitmlInputError):
        HitClassifier.load(tmp_path / "bad.safetensors")


def test_same_seed_same_model(data):
    train, test, clf = data
    again = HitClassifier(n_estimators=30, random_state=0).fit(train, train["truth"])
    assert np.array_equal(again.predict_proba(test), clf.predict_proba(test))


def test_default_classifier_is_cached(tmp_path):
    settings = {"n_frames": 2, "shape": [96, 96], "seed": 3}
    a = default_classifier(cache_dir=tmp_path, training=settings)
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1
    b = default_classifier(cache_dir=tmp_path, training=settings)
    assert not hasattr(b, "forest_")  # loaded from the cache, not retrained
    t = simulate_labelled_hits(1, (96, 96), seed=9)
    assert np.array_equal(a.predict_proba(t), b.predict_proba(t))
    files[0].write_bytes(b"broken")  # a damaged cache entry is rebuilt
    c = default_classifier(cache_dir=tmp_path, training=settings)
    assert np.array_equal(c.predict_proba(t), a.predict_proba(t))


def test_bad_method():
    with pytest.raises(OrbitmlInputError):
        HitClassifier("svm")


def test_real_gmos_hits_are_cosmic(tmp_path_factory, shared_data):
    """The two known cosmic rays of the real GMOS cutout (astroscrappy test boxes) classify as
    tracks or worms by the built-in classifier (the one `cosmic catalog` uses)."""
    import astroscrappy
    from astropy.io import fits
    path = shared_data / "ccd" / "gmos_S20190808S0048_cutout.fits"
    if not path.is_file():
        pytest.skip(f"real data file {path} not available")
    sci = fits.getdata(path, "SCI").astype(np.float32)
    gain = 1.933
    mask, clean = astroscrappy.detect_cosmics(sci, gain=gain, readnoise=4.24, sigclip=4.5)
    t = hit_table(sci * gain, clean * gain, mask)
    clf = default_classifier(cache_dir=tmp_path_factory.mktemp("cache"))
    pred = clf.predict(t)
    boxes = [(slice(41, 72), slice(142, 161)), (slice(117, 147), slice(35, 43))]
    for rows, cols in boxes:
        inside = ((t["y"] >= rows.start) & (t["y"] < rows.stop) & (t["x"] >= cols.start)
                  & (t["x"] < cols.stop)).to_numpy()
        assert inside.any()
        big = np.flatnonzero(inside)[np.argmax(t.loc[inside, "n_pixels"].to_numpy())]
        assert pred[big] in ("track", "worm"), pred[big]
