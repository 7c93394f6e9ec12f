import json

import numpy as np
import rasterio
from scipy import ndimage

from orbitml.cli.main import cli_run

from .conftest import MARS_EQC, write_tif


def test_tiles_chunk_cli(tmp_path, capsys):
    data = np.full((1, 50, 70), 9, np.uint8)
    data[0, 40:, 60:] = 0
    img = write_tif(tmp_path / "h.tif", data, nodata=0)
    out = tmp_path / "tiles.geojson"
    code = cli_run(["tiles", "chunk", str(img), "--size", "32", "--overlap", "8", "--out", str(out),
                    "--max-black", "0.0"])
    assert code == 0
    doc = json.loads(out.read_text())
    feats = doc["features"]
    assert len(feats) == 2 * 3
    kept = [f["properties"]["kept"] for f in feats]
    assert kept.count(False) == 1 and feats[-1]["properties"]["kept"] is False  # bottom-right has black
    assert (tmp_path / "tiles.geojson.run.json").exists()
    assert "6 tiles, 5 kept" in capsys.readouterr().err
    assert cli_run(["tiles", "chunk", str(img), "--size", "32", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_tiles_smooth_cli_equals_whole_image_filter(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = rng.random((1, 90, 75)).astype(np.float32)
    img = write_tif(tmp_path / "c.tif", data)
    out = tmp_path / "s.tif"
    code = cli_run(["tiles", "smooth", str(img), "--out", str(out), "--tile", "48", "--stride", "24",
                    "--sigma", "2", "--weights", "hann"])
    assert code == 0, capsys.readouterr().err
    with rasterio.open(out) as ds:
        got = ds.read(1)
        assert ds.crs == MARS_EQC
    ref = ndimage.gaussian_filter(data[0].astype(np.float32), 2.0, mode="mirror")
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6)
    # away from the borders the tiled result equals the whole-image filter in any boundary mode
    ref_n = ndimage.gaussian_filter(data[0], 2.0, mode="nearest")
    np.testing.assert_allclose(got[10:-10, 10:-10], ref_n[10:-10, 10:-10], atol=2e-6)
    assert cli_run(["tiles", "smooth", str(img), "--out", str(out)]) == 2
    assert cli_run(["tiles", "smooth", str(img), "--out", str(out), "--overwrite", "--filter", "median",
                    "--median-size", "3", "--tile", "32"]) == 0
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(1), ndimage.median_filter(data[0], 3, mode="mirror"))


def test_tiles_cli_bad_input(tmp_path, capsys):
    img = write_tif(tmp_path / "c.tif", np.ones((1, 40, 40), np.float32))
    assert cli_run(["tiles", "smooth", str(img), "--out", str(tmp_path / "o.tif"), "--tile", "64"]) == 2
    assert "larger than the image" in capsys.readouterr().err
    assert cli_run(["tiles", "smooth", str(img), "--out", str(tmp_path / "o.tif"), "--tile", "32",
                    "--stride", "40"]) == 2
    err = capsys.readouterr().err
    assert "stride" in err and "Traceback" not in err
    assert cli_run(["tiles", "smooth", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "o.tif")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()
