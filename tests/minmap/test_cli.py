"""CLI end to end on a tiny simulated example: simulate -> train -> map -> evaluate, and every product."""

from __future__ import annotations

import json

import numpy as np
import rasterio
import yaml

from orbitml.cli.main import cli_run
from orbitml.io import open_scene

from .conftest import TINY_NET


def test_simulate_train_map_evaluate(tmp_path, capsys):
    d = tmp_path / "ex"
    assert cli_run(["minmap", "simulate", "--out", str(d), "--size", "20", "--seed", "5"]) == 0
    capsys.readouterr()
    man = yaml.safe_load((d / "manifest.yaml").read_text())
    assert man["simulated"] is True
    man.update(network=TINY_NET, augment={"n_per_class": 20}, patches={"n_train": 48, "n_val": 16},
               training={"epochs": 1, "threads": 1}, projection={"dims": "auto"})
    (d / "manifest.yaml").write_text(yaml.safe_dump(man))
    assert cli_run(["minmap", "train", str(d / "manifest.yaml"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "simulated spectral libraries" in err  # said on the console
    model = d / "model"
    card = json.loads((model / "model.json").read_text())
    assert card["training_data"]["simulated"] is True
    assert card["classes"] == sorted(card["classes"]) and len(card["classes"]) == 4
    assert {"hfc", "nwhfc", "hysime"} <= set(card["projection"]["estimates"])
    for f in ("model.safetensors", "training_log.csv", "manifest.yaml", "run.json", "checkpoints/last.ckpt"):
        assert (model / f).exists(), f
    assert "train_acc" in (model / "training_log.csv").read_text().splitlines()[0]

    out = d / "map"
    assert cli_run(["minmap", "map", "--model", str(model), "--scene", str(d / "scene.img"), "--out", str(out),
                    "--no-progress"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert sum(info["class_counts"].values()) == 400
    scene = open_scene(d / "scene.img")
    with rasterio.open(out / "class_map.tif") as ds:
        cls = ds.read(1)
        assert ds.crs == scene.rio.crs and ds.transform == scene.rio.transform()
        cmap = ds.colormap(1)
        assert cmap[0][:3] == (160, 160, 160) and len({cmap[i] for i in range(5)}) == 5
        tags = ds.tags()
        assert tags["CLASS_0"] == "Unclassified" and tags["CLASS_1"] == card["classes"][0]
        assert "simulated" in tags["ORBITML_NOTICE"]
    assert set(np.unique(cls)) <= set(range(5))
    ab = open_scene(out / "abundances.img")
    assert ab.dtype == np.float32 and ab.sizes["band"] == 4
    assert list(ab.coords["band_name"].values) == [f"abundance {c}" for c in card["classes"]]
    assert ab.rio.crs == scene.rio.crs
    np.testing.assert_allclose(ab.values.sum(0), 1.0, atol=1e-5)
    hdr = (out / "abundances.hdr").read_text()
    assert "map info" in hdr and "simulated" in hdr and "interleave = bsq" in hdr.lower()
    chdr = (out / "class_map.hdr").read_text()
    assert "ENVI Classification" in chdr and "Unclassified" in chdr
    envi_cls = open_scene(out / "class_map.img").values[0]
    assert np.array_equal(envi_cls, cls)
    assert (out / "classified.png").stat().st_size > 1000 and (out / "run.json").exists()

    ev = d / "eval"
    assert cli_run(["minmap", "evaluate", "--model", str(model), "--scene", str(d / "scene.img"),
                    "--truth", str(d / "truth_classes.tif"), "--truth", str(d / "truth_abundances.img"),
                    "--out", str(ev)]) == 0
    res = json.loads(capsys.readouterr().out)
    for method in ("network", "fcls_class_mean"):
        for k in ("overall_accuracy", "kappa", "mean_f1", "abundance_rmse"):
            assert np.isfinite(res[method][k])
        assert set(res[method]["f1"]) == set(card["classes"])
    html = (ev / "evaluation.html").read_text()
    assert "fcls_class_mean" in html and "simulated" in html

    # a scene from another sensor is refused before any output is written
    from orbitml.io import write_scene
    from orbitml.simulate.minmap import simulate_minmap

    other = simulate_minmap(["kaolinite", "jarosite"], shape=(8, 8), n_bands=120).scene
    write_scene(other, d / "other.img", overwrite=True)
    assert cli_run(["minmap", "map", "--model", str(model), "--scene", str(d / "other.img"),
                    "--out", str(d / "map2")]) == 2
    assert "do not match the model" in capsys.readouterr().err
    assert not (d / "map2").exists()
