"""Browse products: definitions against the shared CSV, stretches, PNG/GeoTIFF round trips, the CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from orbitml.cli.main import cli_run
from orbitml.crism.browse import (
    BROWSE_PRODUCTS,
    CSV_DIFFERENCES,
    EXTRA_PRODUCTS,
    browse_rgb,
    product_parameters,
    stretch_channel,
    write_browse,
)
from orbitml.crism.params_table import canonical_name
from orbitml.errors import OrbitmlInputError
from orbitml.scene import make_scene
from tests.conftest import shared_file

MARS_CRS = ('PROJCS["Mars Equirectangular",GEOGCS["Mars 2000",DATUM["D_Mars_2000",SPHEROID["Mars_2000_IAU",'
            '3396190,0]],PRIMEM["Reference_Meridian",0],UNIT["degree",0.0174532925199433]],'
            'PROJECTION["Equirectangular"],PARAMETER["standard_parallel_1",0],PARAMETER["central_meridian",0],'
            'PARAMETER["false_easting",0],PARAMETER["false_northing",0],UNIT["metre",1]]')


def test_definitions_match_the_shared_csv():
    path = shared_file("crism/browse_products.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"BrowseProduct", "Param1", "Param2", "Param3"}
    from_csv = {r["BrowseProduct"]: (r["Param1"], r["Param2"], r["Param3"]) for r in rows}
    # PHY follows Viviano-Beck 2014 (R = D2300, G = D2200): the CSV has R and G swapped
    assert from_csv["PHY"] == ("D2200", "D2300", "BD1900r2") == CSV_DIFFERENCES["PHY"]
    assert BROWSE_PRODUCTS["PHY"] == ("D2300", "D2200", "BD1900r2")
    assert {**BROWSE_PRODUCTS, **CSV_DIFFERENCES} == from_csv
    assert EXTRA_PRODUCTS["IRA"] == ("R1330",) * 3
    assert not set(EXTRA_PRODUCTS) & set(from_csv)


def test_every_product_parameter_is_in_the_table():
    for prod in (*BROWSE_PRODUCTS, *EXTRA_PRODUCTS):
        for name in product_parameters([prod]):
            assert canonical_name(name) == name


def test_percentile_and_fixed_stretch():
    v = np.linspace(0.0, 1.0, 1001).reshape(7, 143)
    v[0, 0] = np.nan
    ch, (lo, hi) = stretch_channel(v, percentiles=(0.1, 99.9))
    finite = v[np.isfinite(v)]
    assert lo == pytest.approx(np.percentile(finite, 0.1)) and hi == pytest.approx(np.percentile(finite, 99.9))
    assert ch[0, 0] == 0 and ch[np.isfinite(v)].min() == 1 and ch.max() == 255
    ch, lim = stretch_channel(np.array([[-1.0, 0.0, 0.05, 0.1, 2.0]]), limits=(0.0, 0.1))
    assert lim == (0.0, 0.1)
    assert ch.tolist() == [[1, 1, 128, 255, 255]]  # 1 + round(0.5 * 254) = 128


def _param_scene():
    rng = np.random.default_rng(0)
    data = rng.random((3, 6, 8)).astype(np.float32)
    data[:, 0, 0] = np.nan
    return make_scene(data, band_names=["OLINDEX3", "LCPINDEX2", "HCPINDEX2"], crs=MARS_CRS,
                      transform=Affine(200.0, 0, 1000.0, 0, -200.0, 5000.0), nodata=np.nan)


def test_browse_png_and_geotiff_round_trip(tmp_path):
    scene = _param_scene()
    rgb, used = browse_rgb(scene, "maf", limits={"olindex3": (0.0, 1.0)})
    assert [u[0] for u in used] == ["OLINDEX3", "LCPINDEX2", "HCPINDEX2"] and used[0][1] == (0.0, 1.0)
    expect_r = 1 + np.round(np.clip(scene.values[0], 0, 1) * 254)
    np.testing.assert_array_equal(rgb[0][1:], expect_r[1:])
    assert (rgb[:, 0, 0] == 0).all()
    paths = write_browse(scene, "MAF", tmp_path, limits={"OLINDEX3": (0.0, 1.0)})
    png = np.asarray(Image.open(paths["png"]))
    np.testing.assert_array_equal(png, np.moveaxis(rgb, 0, -1))
    with rasterio.open(paths["tif"]) as ds:
        assert ds.count == 3 and ds.dtypes[0] == "uint8" and ds.nodata == 0
        assert ds.crs == scene.rio.crs and ds.transform == scene.rio.transform()
        assert ds.descriptions == ("OLINDEX3", "LCPINDEX2", "HCPINDEX2")
        np.testing.assert_array_equal(ds.read(), rgb)
    with pytest.raises(OrbitmlInputError, match="exists"):
        write_browse(scene, "MAF", tmp_path)
    with pytest.raises(OrbitmlInputError, match="needs parameter"):
        browse_rgb(scene, "HYD")
    with pytest.raises(OrbitmlInputError, match="unknown browse product"):
        browse_rgb(scene, "XYZ")


def _argv(out, *extra):
    return ["crism", "params", str(shared_file("crism/frt0000932c_07_if164j_mtr3_subsampled.tif")),
            "--wavelengths", str(shared_file("crism/frt0000932c_mtr3_wavelengths_nm.csv")), "--out", str(out),
            *extra]


def test_cli_on_real_mtrdr(tmp_path, capsys):
    from orbitml.crism.params import summary_parameters
    from orbitml.io import open_scene

    out = tmp_path / "run"
    code = cli_run(_argv(out, "--params", "BD1900_2,D2300,bd1900r2", "--browse", "PHY,MAF"))
    assert code == 0, capsys.readouterr().err
    with rasterio.open(out / "parameters.tif") as ds:
        assert ds.descriptions[:3] == ("BD1900_2", "D2300", "BD1900r2")
        cube = ds.read()
        src = open_scene(shared_file("crism/frt0000932c_07_if164j_mtr3_subsampled.tif"),
                         wavelengths=shared_file("crism/frt0000932c_mtr3_wavelengths_nm.csv"))
        assert ds.crs == src.rio.crs and ds.transform == src.rio.transform()
    direct = summary_parameters(src, ["BD1900_2", "D2300"])
    np.testing.assert_allclose(cube[:2], direct.values, equal_nan=True)
    for prod in ("PHY", "MAF"):
        assert (out / "browse" / f"{prod}.png").exists() and (out / "browse" / f"{prod}.tif").exists()
    info = json.loads((out / "run.json").read_text())
    assert info["command"] == "orbitml crism params" and info["params"]["browse"] == ["PHY", "MAF"]
    with open(out / "parameter_bands.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["parameter"] == "BD1900_2"]
    assert {float(r["requested_nm"]) for r in rows} == {1850.0, 2067.0, 1930.0}  # CAT's hyperspectral form

    # a parameter the data cannot give, asked for by name: one line, exit 2, nothing written
    code = cli_run(_argv(tmp_path / "bad", "--params", "R3920", "--browse", "none"))
    err = capsys.readouterr().err
    assert code == 2 and "R3920" in err and "Traceback" not in err
    assert not (tmp_path / "bad" / "parameters.tif").exists()


def test_cli_on_simulated_cube_finds_the_hydrated_patch(tmp_path, capsys):
    from orbitml.io import write_scene

    wl = np.arange(1000.0, 2700.0, 6.55)
    h, w = 12, 10
    cont = 0.25 + 0.02 * (wl - 1000) / 1000
    band = 1.0 - 0.2 * np.exp(-(((wl - 1935) / 40) ** 2))
    cube = np.broadcast_to(cont[:, None, None], (wl.size, h, w)).copy()
    cube[:, 3:7, 2:5] *= band[:, None, None]  # a hydrated patch
    cube[:, 0, 0] = -1.0
    scene = make_scene(cube.astype(np.float32), wavelength=wl, crs=MARS_CRS,
                       transform=Affine(18.0, 0, 0.0, 0, -18.0, 0.0), nodata=-1.0)
    src = write_scene(scene, tmp_path / "sim.img", format="envi")
    code = cli_run(["crism", "params", str(src), "--out", str(tmp_path / "out"), "--params", "BD1900_2",
                    "--browse", "HYD", "--format", "envi"])
    assert code == 0, capsys.readouterr().err
    from orbitml.io import open_scene

    res = open_scene(tmp_path / "out" / "parameters.img")
    bd = np.asarray(res.values[0], dtype=float)
    assert np.isnan(bd[0, 0])
    patch = np.zeros((h, w), bool)
    patch[3:7, 2:5] = True
    # BD1900_2 (CAT) = the depth at 1930 nm of a Gaussian centred at 1935 nm (5-band median there)
    expect = 0.2 * np.exp(-((1930 - 1935) / 40) ** 2)
    np.testing.assert_allclose(bd[patch], expect, atol=0.015)
    assert np.nanmax(np.abs(bd[~patch])) < 1e-5
    with rasterio.open(tmp_path / "out" / "browse" / "HYD.tif") as ds:
        blue = ds.read(3)  # BD1900_2 is the blue channel of HYD
    assert blue[patch].min() > blue[~patch & (blue > 0)].max()
