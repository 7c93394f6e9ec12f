"""Real formats end to end: USGS splib07 (AVIRIS-1995 convolution) mineral groups -> AVIRIS-NG reflectance chip.

There is no truth for the chip; this checks that real libraries and a real ENVI BIP scene with a rotated
UTM grid go through training and mapping, and that products carry the grid, CRS and class names.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import yaml

from orbitml.errors import OrbitmlInputError
from orbitml.minmap.manifest import load
from orbitml.minmap.train import train
from tests.conftest import shared_file

from .conftest import TINY_NET

GROUPS = {"kaolinite": "^Kaolinite", "alunite": "^Alunite", "calcite": "^Calcite", "muscovite": "^Muscovite"}


def _manifest(tmp_path, **over):
    sli = shared_file("hsi/envi/s07_AV95_envi.sli")
    chip = shared_file("hsi/envi/ang20150420t182808_corr_v1e_img_4200-4210_70-80.img")
    man = {"scene": str(chip), "classes": {k: {"library": str(sli), "pattern": v} for k, v in GROUPS.items()},
           "bands": {"keep_nm": [400, 2450]}, "augment": {"n_per_class": 30},
           "patches": {"n_train": 48, "n_val": 16}, "network": TINY_NET,
           "training": {"epochs": 1, "threads": 1}, "out": str(tmp_path / "model")}
    man.update(over)
    p = tmp_path / "real.yaml"
    p.write_text(yaml.safe_dump(man, sort_keys=False))
    return p


def test_library_range_checked_against_the_real_scene(tmp_path):
    p = _manifest(tmp_path, bands={"remove_nm": [[1340, 1450], [1790, 1960]]})  # keeps the 346-383 nm bands
    with pytest.raises(OrbitmlInputError, match=r"library covers 383\.\d-2508\.\d nm") as e:
        train(load(p), p, log=lambda *_: None)
    assert e.value.path.endswith("s07_AV95_envi.sli")
    assert not (tmp_path / "model").exists()


def test_usgs_groups_map_the_aviris_ng_chip(tmp_path):
    from orbitml.io import open_scene
    from orbitml.minmap.run import map_file

    p = _manifest(tmp_path)
    model = train(load(p), p, log=lambda *_: None)
    card = json.loads((model / "model.json").read_text())
    assert card["classes"] == list(GROUPS) and card["training_data"]["simulated"] is False
    assert all(n > 0 for n in card["training_data"]["n_spectra"].values())
    wl = np.array(card["bands"]["wavelength_nm"])
    assert wl.min() >= 400 and wl.max() <= 2450 and not ((wl > 1340) & (wl < 1450)).any()
    # 100 pixels for ~370 bands: the count falls back to the library spectra, and says so
    assert card["projection"]["source"].startswith("augmented library spectra")
    assert "library spectra" in card["projection"]["rule"]
    info = map_file(model, card["training_data"]["scene_for_projection"],
                    tmp_path / "map", log=lambda *_: None)
    assert info["notice"] is None and sum(info["class_counts"].values()) == 100
    scene = open_scene(card["training_data"]["scene_for_projection"])
    with rasterio.open(tmp_path / "map" / "class_map.tif") as ds:
        assert ds.crs.to_epsg() == 32612 and ds.transform.almost_equals(scene.rio.transform())
        assert ds.tags()["CLASS_2"] == "alunite" and "ORBITML_NOTICE" not in ds.tags()
    ab = open_scene(tmp_path / "map" / "abundances.img")
    assert ab.shape == (4, 10, 10)
    np.testing.assert_allclose(ab.values.sum(0), 1.0, atol=1e-5)
