"""Bad input: one clear error naming the file and the problem, before training, nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.minmap.manifest import load
from orbitml.minmap.train import prepare, train

from .conftest import tiny_manifest


def _fails(path, match):
    man = load(path)
    with pytest.raises(OrbitmlInputError, match=match) as err:
        train(man, path, log=lambda *_: None)
    out = path.parent / man.out
    assert not out.exists()  # nothing half-written
    assert not list(path.parent.glob(f".{out.name}.*"))
    return err.value


def test_unknown_key_and_wrong_type(sim_dir):
    p = tiny_manifest(sim_dir, epochz=3)
    with pytest.raises(OrbitmlInputError, match="epochz: unknown key") as e:
        load(p)
    assert str(p) in str(e.value)
    p = tiny_manifest(sim_dir, training={"epochs": "many"})
    with pytest.raises(OrbitmlInputError, match="training.epochs"):
        load(p)
    p = tiny_manifest(sim_dir, network={"patch": 12})
    with pytest.raises(OrbitmlInputError, match="patch must be odd"):
        load(p)


def test_missing_files_and_both_library_kinds(sim_dir):
    with pytest.raises(OrbitmlInputError, match="scene not found"):
        load(tiny_manifest(sim_dir, scene="nope.img"))
    both = tiny_manifest(sim_dir, classes={"a": {"library": "libraries/jarosite.csv"},
                                           "b": {"library": "libraries/kaolinite.csv"}})
    with pytest.raises(OrbitmlInputError, match="exactly one of"):
        load(both)


def test_library_not_covering_the_scene(sim_dir, tmp_path):
    from orbitml.spectra import read_library, write_library

    lib = read_library(sim_dir / "libraries" / "jarosite.csv")
    short = lib.take(range(len(lib)))
    short = type(lib)(short.spectra[:, :400], short.wavelength[:400], short.names)  # 350-1148 nm only
    write_library(short, sim_dir / "short_jarosite.csv", overwrite=True)
    p = tiny_manifest(sim_dir, library_dir=None, out="m_short",
                      classes={"jarosite": {"library": "short_jarosite.csv"},
                               "kaolinite": {"library": "libraries/kaolinite.csv"}})
    err = _fails(p, r"library covers 350.0-1148.0 nm")
    assert err.path.endswith("short_jarosite.csv")


def test_empty_class(sim_dir):
    p = tiny_manifest(sim_dir, library_dir=None, out="m_empty",
                      classes={"jarosite": {"library": "libraries/jarosite.csv", "pattern": "^jarosite"},
                               "alunite": {"library": "libraries/jarosite.csv", "pattern": "^alunite"}})
    _fails(p, r"class 'alunite' has no spectra: pattern '\^alunite' matches nothing")


def test_mask_of_wrong_shape_or_crs(sim_dir):
    from orbitml.io import write_scene
    from orbitml.scene import make_scene

    write_scene(make_scene(np.ones((1, 10, 24), np.uint8), crs="EPSG:32633"), sim_dir / "mask_small.tif",
                overwrite=True)
    _fails(tiny_manifest(sim_dir, mask="mask_small.tif", out="m_mask"),
           "mask is 10 x 24 pixels but the scene is 24 x 24")
    write_scene(make_scene(np.ones((1, 24, 24), np.uint8), crs="EPSG:4326"), sim_dir / "mask_crs.tif",
                overwrite=True)
    _fails(tiny_manifest(sim_dir, mask="mask_crs.tif", out="m_mask2"), "CRS")


def test_all_bands_removed(sim_dir):
    _fails(tiny_manifest(sim_dir, bands={"remove_nm": [[300, 2600]]}, out="m_bands"), "scene bands left")


def test_prepare_records_dims_rule_and_estimates(sim_dir):
    man = load(tiny_manifest(sim_dir, projection={"dims": "auto", "basis": "pca"}))
    prep = prepare(man, log=lambda *_: None)
    proj = prep.card["projection"]
    assert set(proj["estimates"]) == {"hfc", "nwhfc", "hysime", "median"}
    assert proj["dims"] == prep.R >= 4  # at least the number of classes
    assert proj["dims"] == max(4, min(proj["estimates"]["median"], 32))
    X, y, a = prep.train
    assert X.shape == (64, prep.R, 11, 11) and np.bincount(y).tolist() == [16] * 4  # balanced centre classes
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-5)
    assert (a.argmax(1) == y).all()  # the label is the centre's dominant class


def test_evaluate_checks_the_memory_it_needs(sim_dir, tmp_path, monkeypatch):
    """``evaluate`` holds the scene, both methods' outputs and the truth: above ORBITML_MAX_MEMORY it refuses."""
    from orbitml.minmap import manifest as mm
    from orbitml.minmap.run import evaluate_file
    from orbitml.minmap.train import train

    from .conftest import tiny_manifest

    p = tiny_manifest(sim_dir, out=str(tmp_path / "model"))
    model = train(mm.load(p), p, log=lambda *a: None)
    monkeypatch.setenv("ORBITML_MAX_MEMORY", "100K")  # the 24 x 24 scene needs about 1 MB
    with pytest.raises(OrbitmlInputError, match="minmap evaluate needs .* more than the limit"):
        evaluate_file(model, sim_dir / "scene.img", [str(sim_dir / "truth_classes.tif")])
    monkeypatch.setenv("ORBITML_MAX_MEMORY", "8G")
    res = evaluate_file(model, sim_dir / "scene.img", [str(sim_dir / "truth_classes.tif")])
    assert 0 <= res["network"]["overall_accuracy"] <= 1
