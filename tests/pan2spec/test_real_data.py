"""Real instrument files from ../shared/data (skipped when absent)."""

import json

import numpy as np
import rasterio
from affine import Affine

from orbitml.cli.main import cli_run
from tests.conftest import shared_file

CRISM = "crism/frt0000932c_07_if164j_mtr3_subsampled.tif"
WL = "crism/frt0000932c_mtr3_wavelengths_nm.csv"
CTX = "mars/ctx/ctxTestImage.cub"
MOLA = "mars/mola/mola_compressed_prep.cub"


def _ctx_like(crism_path, out, factor=3):
    """A CTX-like image in the CRISM product's own Mars CRS, 3x finer, from its visible bands."""
    with rasterio.open(crism_path) as ds:
        vis = ds.read([20, 30, 40]).astype(float)
        vis[vis == 65535] = np.nan
        crs, tf = ds.crs, ds.transform
    ok = np.isfinite(vis).all(axis=0)
    pan = np.where(ok, np.nan_to_num(vis).mean(axis=0), vis[:, ok].mean())
    img = np.kron(pan, np.ones((factor, factor)))[None].astype(np.float32)
    prof = dict(driver="GTiff", height=img.shape[1], width=img.shape[2], count=1, dtype="float32", crs=crs,
                transform=tf * Affine.scale(1 / factor))
    with rasterio.open(out, "w", **prof) as dst:
        dst.write(img)
    return out


def test_real_crism_builds_with_its_table_and_mola(tmp_path, capsys):
    crism, wl, mola = shared_file(CRISM), shared_file(WL), shared_file(MOLA)
    ctx = _ctx_like(crism, tmp_path / "ctx_like.tif")
    out = tmp_path / "pairs"
    # the MTRDR GeoTIFF carries no band centres: refused without --wavelengths
    assert cli_run(["pan2spec", "build", str(ctx), str(crism), "--out", str(out)]) == 2
    assert "no wavelength table" in capsys.readouterr().err
    code = cli_run(["pan2spec", "build", str(ctx), str(crism), "--out", str(out), "--wavelengths", str(wl),
                    "--dem", str(mola), "--name", "real", "--min-valid-pixels", "500"])
    assert code == 0, capsys.readouterr().err
    stats = json.loads((out / "real" / "stats.json").read_text())
    table = np.loadtxt(wl, delimiter=",", skiprows=1)[:, 1]
    for want, idx, got in zip((592, 533, 442), stats["crism_band_indices"], stats["wavelengths_nm"], strict=True):
        assert got == table[idx - 1] and abs(got - want) == np.abs(table - want).min()
    with rasterio.open(out / "real" / "crism.tif") as p, rasterio.open(ctx) as c, \
            rasterio.open(out / "real" / "dem.tif") as d:
        assert p.crs == c.crs and "Mars" in p.crs.to_wkt() and p.count == 3
        assert np.isfinite(d.read(1)).mean() > 0.9
    # the real CRISM-derived CTX is aligned with the product: the residual shift stays small
    assert abs(np.hypot(*stats["quality"]["global_shift_px"])) < 1.0


def test_real_ctx_cube_has_camera_geometry_only(sim_data, tmp_path, capsys):
    crism, wl = shared_file(CRISM), shared_file(WL)
    assert cli_run(["pan2spec", "build", str(shared_file(CTX)), str(crism), "--wavelengths", str(wl),
                    "--out", str(tmp_path)]) == 2
    assert "camera geometry" in capsys.readouterr().err
    # a (simulated) CTX elsewhere on Mars does not overlap the real CRISM product
    root, _ = sim_data
    assert cli_run(["pan2spec", "build", str(root / "raw" / "pair_0" / "ctx.tif"), str(crism), "--wavelengths",
                    str(wl), "--out", str(tmp_path)]) == 2
    assert "do not overlap" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_predict_on_the_real_ctx_cube(regression_model, tmp_path, capsys):
    ctx = shared_file(CTX)
    assert cli_run(["pan2spec", "predict", str(ctx), "--model", str(regression_model), "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "no map projection" in err and "simulated" in err
    with rasterio.open(tmp_path / "ctxTestImage_pan2spec.tif") as p:
        assert p.crs is None and p.shape == (20, 20) and p.count == 3
        data = p.read()
    assert np.isfinite(data).all()
    # image-wise units: the prediction is a z-score image, its input normalised by its own statistics
    assert np.abs(data.mean()) < 3
