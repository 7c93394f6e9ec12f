"""End to end: MAT files -> train -> classify / ratio / evaluate through the CLI, and the pipeline."""

import json

import numpy as np
import pytest
import rasterio

from orbitml.cli.main import cli_run
from orbitml.crism import classes as cc
from orbitml.crism import matfile as mf
from orbitml.crism.pipeline import classify_cube
from orbitml.io import write_scene
from orbitml.scene import make_scene
from tests.conftest import shared_file
from tests.crism import _sim

WKT = ('PROJCS["Mars equirectangular",GEOGCS["Mars 2000",DATUM["D_Mars_2000",SPHEROID["Mars",3396190,0]],'
       'PRIMEM["Reference_Meridian",0],UNIT["degree",0.0174532925199433]],PROJECTION["Equirectangular"],'
       'PARAMETER["standard_parallel_1",0],PARAMETER["central_meridian",0],PARAMETER["false_easting",0],'
       'PARAMETER["false_northing",0],UNIT["metre",1]]')


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("crism")
    mf.write_mat(root / "L.mat", _sim.labelled(), version="7.3")
    mf.write_mat(root / "B.mat", _sim.bland(), version="5")
    im = _sim.copy_image()
    cube = np.moveaxis(im["cube"], -1, 0)[::-1]  # TRR3-like: decreasing wavelength, detector geometry (no CRS)
    scene = make_scene(cube, wavelength=im["wavelengths"][::-1], nodata=65535, attrs={"source": "sim"})
    write_scene(scene, root / "img.img", "envi")
    # the same cube map-projected (an MTRDR-like product): its columns are not detector columns
    mapped = make_scene(cube, wavelength=im["wavelengths"][::-1], crs=WKT, transform=(5000, 18, 0, -300, 0, -18),
                        nodata=65535, attrs={"source": "sim"})
    write_scene(mapped, root / "map.img", "envi")
    code = cli_run(["crism", "train", "--labeled", str(root / "L.mat"), "--bland", str(root / "B.mat"),
                    "--out", str(root / "model")])
    assert code == 0
    return root, im


def test_train_writes_model_card(work):
    root, _ = work
    card = json.loads((root / "model" / "model.json").read_text())
    assert card["n_models"] == 15 and card["has_bland_model"]
    assert len(card["cache_key"]) == 64 and card["training"]["n_images"] == 10
    assert (root / "model" / "run.json").is_file()


def test_classify_end_to_end(work, capsys):
    root, im = work
    out = root / "out"
    assert cli_run(["crism", "classify", str(root / "img.img"), "--model", str(root / "model"), "--out", str(out)]) == 0
    with rasterio.open(out / "class_map.tif") as ds:
        cm = ds.read(1)
        assert ds.crs is None and ds.nodata == 255 and ds.tags()["ORBITML_RATIO_METHOD"] == "column"
        assert "ORBITML_NOTICE" not in ds.tags()
        assert ds.colormap(1)[0][:3] == (160, 160, 160)
        assert json.loads(ds.tags()["CLASS_NAMES"])[6] == cc.name(6)
    truth = im["truth"]
    ok = truth > 0
    assert (cm[ok] == truth[ok]).mean() > 0.8
    for code in (6, 14, 19, 30):
        assert (cm[truth == code] == code).mean() > 0.6
    with rasterio.open(out / "ratioed.tif") as ds:
        assert ds.count == 350 and float(ds.tags(1)["wavelength"]) == pytest.approx(1021.0, abs=0.5)
    gj = json.loads((out / "regions.geojson").read_text())
    codes = {f["properties"]["code"] for f in gj["features"]}
    assert {6, 14, 19, 30} <= codes
    assert "<img" in (out / "report.html").read_text()
    # writing again without --overwrite is a user error
    code = cli_run(["crism", "classify", str(root / "img.img"), "--model", str(root / "model"), "--out", str(out)])
    assert code == 2 and "exists" in capsys.readouterr().err


def test_map_projected_product_refuses_column_ratioing(work, capsys):
    root, im = work
    out = root / "map_out"
    code = cli_run(["crism", "classify", str(root / "map.img"), "--model", str(root / "model"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "map-projected" in err and "--ratio scene" in err and not out.exists()
    assert cli_run(["crism", "ratio", str(root / "map.img"), "--bland", str(root / "B.mat"), "--out",
                    str(root / "map_ratio")]) == 2
    assert "map-projected" in capsys.readouterr().err
    # the scene-level bland-pixel ratio runs and says so in every product
    assert cli_run(["crism", "classify", str(root / "map.img"), "--model", str(root / "model"), "--out", str(out),
                    "--ratio", "scene"]) == 0
    with rasterio.open(out / "class_map.tif") as ds:
        assert ds.crs is not None and ds.transform.a == 18
        assert ds.tags()["ORBITML_RATIO_METHOD"] == "scene"
    with rasterio.open(out / "ratioed.tif") as ds:
        assert ds.tags()["ORBITML_PROCESSING"] == "ratio_method=scene"
    assert "scene-level bland-pixel ratio" in (out / "report.html").read_text()
    assert json.loads((out / "run.json").read_text())["params"]["ratio"] == "scene"
    gj = json.loads((out / "regions.geojson").read_text())
    assert "crs" in gj


def test_demo_model_warns_everywhere(work, tmp_path, capsys):
    """A model trained on simulated data says so on the console, in the page and in the rasters."""
    import shutil

    from orbitml.crism.outputs import training_data_card

    root, _ = work
    model = tmp_path / "demo_model"
    shutil.copytree(root / "model", model)
    card = json.loads((model / "model.json").read_text())
    card["training_data"] = training_data_card(True)
    (model / "model.json").write_text(json.dumps(card))
    out = tmp_path / "o"
    capsys.readouterr()
    assert cli_run(["crism", "classify", str(root / "img.img"), "--model", str(model), "--out", str(out)]) == 0
    assert "demo model: not for science" in capsys.readouterr().err  # the console (rich writes to stderr)
    assert "demo model: not for science" in (out / "report.html").read_text()
    for name in ("class_map.tif", "confidence.tif", "ratioed.tif"):
        with rasterio.open(out / name) as ds:
            assert "not for science" in ds.tags()["ORBITML_NOTICE"], name


def test_regions_follow_the_rules():
    clf, bm = _sim.model()
    im = _sim.copy_image()
    res = classify_cube(im["cube"], im["wavelengths"], clf, bm)
    assert res.regions
    for r in res.regions:
        assert r.n_pixels >= 5 and r.n_columns >= 2
        px = res.region_map == r.id
        assert np.all(res.class_map[px] == r.code)
        np.testing.assert_allclose(r.mean_ratioed, np.nanmean(res.ratioed[px], axis=0), rtol=1e-5)
    # a one-column streak is never a region
    cm = np.zeros((30, 10), np.int16)
    cm[5:20, 4] = 14
    from orbitml.crism.postprocess import find_regions

    regs, _ = find_regions(cm, np.ones((30, 10)), np.ones((30, 10, 3)), np.ones((30, 10, 3)))
    assert regs == []


def test_ratio_command(work):
    root, _ = work
    out = root / "ratio"
    assert cli_run(["crism", "ratio", str(root / "img.img"), "--bland", str(root / "B.mat"), "--out", str(out)]) == 0
    with rasterio.open(out / "ratioed.tif") as ds:
        assert ds.count == 350 and ds.crs is None
        r = ds.read(100)
    assert np.nanmedian(r) == pytest.approx(1.0, abs=0.1)


def test_evaluate_command(work, capsys):
    root, _ = work
    test = _sim.labelled(seed=9, n_images=3)
    mf.write_mat(root / "T.mat", test, version="5")
    capsys.readouterr()
    assert cli_run(["crism", "evaluate", "--model", str(root / "model"), "--labeled", str(root / "T.mat"),
                    "--images", "SIM00001", "--images", "SIM00002", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["images"] == ["SIM00001", "SIM00002"]
    assert res["accuracy"] > 0.8 and 0 <= res["ece"] <= 1 and 0 <= res["ood_rejected"] < 0.1
    assert np.array(res["confusion"]).sum() == res["n_spectra"]
    assert cli_run(["crism", "evaluate", "--labeled", str(root / "L.mat"), "--cv", "2", "--json"]) == 0
    cv = json.loads(capsys.readouterr().out)
    for f in cv["folds"]:
        assert not set(f["test_images"]) & (set(cv["folds"][0]["test_images"]) if f is not cv["folds"][0] else set())
    assert cv["accuracy"] > 0.6


def test_user_errors(tmp_path, capsys):
    assert cli_run(["crism", "train", "--labeled", str(tmp_path / "nope.mat"), "--out", str(tmp_path / "m")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli_run(["crism", "classify", str(tmp_path / "x.tif"), "--model", str(tmp_path), "--out",
                    str(tmp_path / "o")]) == 2
    assert "model" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kappa1: -3\n")
    assert cli_run(["crism", "train", "--simulated", "--config", str(cfg), "--out", str(tmp_path / "m")]) == 2


def test_real_mtrdr_subset(work, tmp_path):
    tif = shared_file("crism/frt0000932c_07_if164j_mtr3_subsampled.tif")
    csv = shared_file("crism/frt0000932c_mtr3_wavelengths_nm.csv")
    root, _ = work
    out = tmp_path / "mtr"
    assert cli_run(["crism", "classify", str(tif), "--wavelengths", str(csv), "--model", str(root / "model"),
                    "--out", str(out), "--no-report", "--ratio", "scene"]) == 0
    with rasterio.open(tif) as src, rasterio.open(out / "class_map.tif") as ds:
        assert ds.crs == src.crs and ds.transform == src.transform and ds.shape == src.shape
        cm = ds.read(1)
    with rasterio.open(out / "confidence.tif") as ds:
        conf = ds.read(1)
    valid = cm != 255
    assert valid.mean() > 0.5
    assert np.all((conf[valid] >= 0) & (conf[valid] <= 1))


@pytest.mark.parametrize("compiled", [True, False])
def test_region_means_and_dilation_match_numpy_and_scipy(compiled, monkeypatch):
    """The one-pass region means are np.nanmean over each region's pixels (NaNs, an all-NaN band,
    inf kept as nanmean keeps it, float32 and float64 cubes); the separable dilation is scipy's
    iterated 3 x 3 dilation, edges included."""
    import warnings

    from scipy import ndimage

    from orbitml.crism import _kernels
    from orbitml.crism.postprocess import dilate_square, region_means

    if not compiled:
        monkeypatch.setattr(_kernels, "AVAILABLE", False)
    rng = np.random.default_rng(5)
    rm = rng.integers(0, 6, size=(40, 30))
    cube = rng.normal(size=(40, 30, 7))
    cube[rng.random(cube.shape) < 0.1] = np.nan
    cube[rm == 3, 2] = np.nan  # region 3 has no value in band 2
    cube[5, 5, 4] = np.inf
    for c in (cube, cube.astype(np.float32)):
        (got,) = region_means(rm, 5, c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.stack([np.nanmean(c[rm == r].astype(np.float64), axis=0) for r in range(1, 6)])
        np.testing.assert_allclose(got, want.astype(np.float32), rtol=2e-6)
        assert np.isnan(got[2, 2]) and np.array_equal(np.isnan(got), np.isnan(want))
    struct8 = np.ones((3, 3), bool)
    for radius in (1, 2, 3):
        mask = rng.random((37, 23)) < 0.03
        mask[0, 0] = mask[-1, 5] = True
        assert np.array_equal(dilate_square(mask, radius),
                              ndimage.binary_dilation(mask, structure=struct8, iterations=radius))
