import json

import numpy as np
import pytest
import rasterio

from orbitml.cli.main import cli_run
from orbitml.pan2spec.evaluate import metrics


def test_metrics_by_hand():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(3, 10, 10))
    v = np.ones((10, 10), bool)
    m = metrics(t, t, v)
    assert m["rmse"] == 0 and m["cosine"] == pytest.approx(1) and m["pearson"] == pytest.approx(1)
    m2 = metrics(2 * t + 1, t, v)
    assert m2["rmse"] == pytest.approx(np.sqrt(np.mean((t + 1) ** 2)))
    assert m2["pearson_per_channel"][1] == pytest.approx(1)
    cos = ((2 * t + 1) * t).sum(0) / (np.linalg.norm(2 * t + 1, axis=0) * np.linalg.norm(t, axis=0))
    assert m2["cosine"] == pytest.approx(cos.mean())


def test_train_predict_evaluate_regression(sim_data, regression_model, tmp_path, capsys):
    root, res = sim_data
    card = json.loads(regression_model.with_suffix(".json").read_text())
    assert card["training_data"]["simulated"] and card["bands_nm"] == [592.0, 533.0, 442.0]
    assert card["normalisation"]["mode"] == "image" and "baseline" in card and "validation" in card["metrics"]
    assert (regression_model.parent / "training_log.csv").exists()
    assert (regression_model.parent / "checkpoints" / "last.ckpt").exists()
    ctx = root / "raw" / "pair_2" / "ctx.tif"
    out = tmp_path / "pred"
    assert cli_run(["pan2spec", "predict", str(ctx), "--model", str(regression_model), "--out", str(out),
                    "--stride-div", "2"]) == 0
    err = capsys.readouterr().err
    assert "simulated" in err and "z-score" in err
    with rasterio.open(ctx) as a, rasterio.open(out / "ctx_pan2spec.tif") as p:
        assert p.crs == a.crs and p.transform == a.transform and p.shape == a.shape and p.count == 3
        assert [float(p.tags(i)["wavelength"]) for i in (1, 2, 3)] == [592.0, 533.0, 442.0]
        assert "simulated" in p.tags()["ORBITML_NOTICE"] and "z-score" in p.tags()["ORBITML_UNITS"]
        assert np.isfinite(p.read()).all()
    assert (out / "ctx_browse.png").stat().st_size > 0
    run = json.loads((out / "ctx_pan2spec.run.json").read_text())
    assert run["params"]["stride"] == 16 and run["params"]["notice"]
    # bands asked for that the model does not predict, and a DEM it was not trained with: refused
    assert cli_run(["pan2spec", "predict", str(ctx), "--model", str(regression_model), "--out", str(out),
                    "--bands", "fc", "--overwrite"]) == 2
    assert "not the" in capsys.readouterr().err
    assert cli_run(["pan2spec", "predict", str(ctx), "--model", str(regression_model), "--out", str(tmp_path / "x"),
                    "--dem", str(root / "raw" / "pair_2" / "dem.tif")]) == 2
    assert not (tmp_path / "x" / "ctx_pan2spec.tif").exists()
    ev = tmp_path / "eval"
    assert cli_run(["pan2spec", "evaluate", str(root / "pairs" / "pair_2"), "--model", str(regression_model),
                    "--out", str(ev)]) == 0
    text = capsys.readouterr().err
    assert "albedo baseline" in text and "network" in text
    m = json.loads((ev / "metrics.json").read_text())
    assert {r["model"] for r in m["per_image"]} == {"network", "albedo baseline"}
    assert "simulated" in (ev / "report.html").read_text()
    # the per-image network metrics equal an independent computation from a predicted pair
    from orbitml.pan2spec.evaluate import pair_arrays, predict_pair, truth_units
    from orbitml.pan2spec.pairs import load_pair
    from orbitml.pan2spec.predict import load_model

    model = load_model(regression_model)
    pair = load_pair(root / "pairs" / "pair_2")
    x, y, v = pair_arrays(pair, False)
    pred = predict_pair(model, x)
    t = truth_units(model.normaliser, y, v, pair)
    rmse = np.sqrt(np.mean((pred[:, v] - t[:, v]) ** 2))
    assert m["per_image"][0]["rmse"] == pytest.approx(rmse, rel=1e-4)


def test_classifier_with_dem_confidence(sim_data, classifier_model, tmp_path, capsys):
    root, _ = sim_data
    card = json.loads(classifier_model.with_suffix(".json").read_text())
    assert card["in_channels"] == 2 and card["bins"]["spacing"] == "sid" and card["bins"]["n"] == 8
    assert "0.1 CE + 0.9 L1" in card["loss"] and card["normalisation"]["invertible"]
    ctx, dem = root / "raw" / "pair_2" / "ctx.tif", root / "raw" / "pair_2" / "dem.tif"
    assert cli_run(["pan2spec", "predict", str(ctx), "--model", str(classifier_model), "--out", str(tmp_path)]) == 2
    assert "--dem" in capsys.readouterr().err
    assert cli_run(["pan2spec", "predict", str(ctx), "--model", str(classifier_model), "--out", str(tmp_path),
                    "--dem", str(dem), "--stride-div", "3"]) == 0
    with rasterio.open(tmp_path / "ctx_confidence.tif") as c, rasterio.open(tmp_path / "ctx_pan2spec.tif") as p:
        conf, pred = c.read(), p.read()
        assert c.count == 2 and c.descriptions == ("peak_probability", "normalised_entropy")
        assert "I/F" in p.tags()["ORBITML_UNITS"]
    assert (conf[0] >= 1 / 8 - 1e-6).all() and (conf[0] <= 1).all() and (conf[1] >= 0).all() and (conf[1] <= 1).all()
    # global normalisation is inverted: predictions are in the I/F range of the training bands
    lo = min(s["mean"] - 6 * s["std"] for s in card["normalisation"]["target_stats"])
    hi = max(s["mean"] + 6 * s["std"] for s in card["normalisation"]["target_stats"])
    assert lo <= pred.min() and pred.max() <= hi


def test_bad_manifest_is_one_line(tmp_path, capsys):
    (tmp_path / "m.yaml").write_text("pairs: [a]\nval_pairs: [b]\nout: o\nbogus: 1\n")
    assert cli_run(["pan2spec", "train", str(tmp_path / "m.yaml")]) == 2
    assert "bogus: unknown key" in capsys.readouterr().err
    (tmp_path / "m.yaml").write_text("pairs: [a]\nval_pairs: [b]\nout: o\n")
    assert cli_run(["pan2spec", "train", str(tmp_path / "m.yaml")]) == 2
    assert "not a pan2spec pair folder" in capsys.readouterr().err


def test_predict_many_resumable(sim_data, regression_model, tmp_path, capsys):
    root, _ = sim_data
    paths = [root / "raw" / f"pair_{i}" / "ctx.tif" for i in (0, 1)]
    import shutil

    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    shutil.copy(paths[0], a)
    shutil.copy(paths[1], b)
    (tmp_path / "bad.tif").write_bytes(b"not a raster")
    out = tmp_path / "many"
    assert cli_run(["pan2spec", "predict", *map(str, paths), "--model", str(regression_model), "--out",
                    str(out)]) == 2
    assert "share the file name stem 'ctx'" in capsys.readouterr().err
    assert cli_run(["pan2spec", "predict", str(a), str(b), str(tmp_path / "bad.tif"), "--model",
                    str(regression_model), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "2 predicted, 0 skipped, 1 failed" in err and "bad.tif" in err and "simulated" in err
    recs = json.loads((out / "predict_many.json").read_text())
    assert [r["status"] for r in recs] == ["done", "done", "failed"]
    one = tmp_path / "one"
    assert cli_run(["pan2spec", "predict", str(b), "--model", str(regression_model), "--out", str(one)]) == 0
    with rasterio.open(out / "b_pan2spec.tif") as x, rasterio.open(one / "b_pan2spec.tif") as y:
        assert np.array_equal(x.read(), y.read())  # same product as a single prediction
    assert cli_run(["pan2spec", "predict", str(a), str(b), "--model", str(regression_model), "--out", str(out)]) == 0
    assert "0 predicted, 2 skipped" in capsys.readouterr().err
