"""End-to-end CLI: orbitml unmix count / endmembers / abundances on a simulated georeferenced cube."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from orbitml.cli.main import cli_run
from orbitml.io import open_scene, write_scene
from orbitml.simulate import simulate_scene
from orbitml.spectra import read_library
from orbitml.unmix import sad


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    d = tmp_path_factory.mktemp("unmixcli")
    sim = simulate_scene(shape=(36, 44), n_endmembers=4, snr_db=40, pure_pixels=True, nodata_fraction=0.1,
                         seed=1, crs="EPSG:32612", transform=Affine(30, 0, 500000, 0, -30, 4000000))
    path = d / "cube.img"
    write_scene(sim.scene, path)
    return path, sim


def test_count_json(cube, capsys):
    path, _ = cube
    assert cli_run(["unmix", "count", str(path), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["p"] == 4 and {"hfc", "nwhfc", "hysime"} <= set(est)


def test_endmembers_then_abundances(cube, tmp_path, capsys):
    path, sim = cube
    em = tmp_path / "em"
    assert cli_run(["unmix", "endmembers", str(path), "--p", "auto", "--method", "avca", "--seed", "3",
                    "--out", str(em)]) == 0
    for f in ("endmembers.csv", "endmembers.sli", "endmembers.hdr", "endmember_pixels.csv", "endmembers.png",
              "run.json"):
        assert (em / f).exists(), f
    lib = read_library(em / "endmembers.sli")
    np.testing.assert_allclose(lib.wavelength, sim.wavelength, atol=1e-6)
    csvlib = read_library(em / "endmembers.csv")
    np.testing.assert_allclose(csvlib.spectra, lib.spectra, rtol=1e-6)
    assert sad(sim.endmembers, lib.spectra).mean_deg < 3.0
    # endmembers are real pixels: their spectra are those pixels of the cube, at the rows/cols listed
    data = open_scene(path).values
    rows = np.genfromtxt(em / "endmember_pixels.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    for k, r in enumerate(np.atleast_1d(rows)):
        np.testing.assert_allclose(data[:, r["row"], r["col"]], lib.spectra[k], rtol=1e-6)
        assert sim.valid[r["row"], r["col"]]
    run = json.loads((em / "run.json").read_text())
    assert run["seed"] == 3 and run["params"]["p"] == 4

    ab = tmp_path / "ab"
    assert cli_run(["unmix", "abundances", str(path), "--endmembers", str(em / "endmembers.sli"), "--method",
                    "fcls", "--out", str(ab), "--format", "gtiff", "--rows-per-block", "7"]) == 0
    with rasterio.open(ab / "abundances.tif") as ds:
        A = ds.read()
        assert ds.crs.to_epsg() == 32612 and ds.transform == Affine(30, 0, 500000, 0, -30, 4000000)
        assert ds.count == 4
    assert np.isnan(A[:, ~sim.valid]).all()
    v = A[:, sim.valid]
    assert np.allclose(v.sum(axis=0), 1, atol=1e-5) and v.min() >= 0
    # same numbers as the library call on the whole cube at once (blocks change nothing)
    from orbitml.unmix import fcls

    X = data[:, sim.valid].T
    np.testing.assert_allclose(v.T, fcls(X, lib.spectra), atol=1e-6)
    assert (ab / "abundances_rgb.png").exists()
    run = json.loads((ab / "run.json").read_text())
    assert run["params"]["rgb"] == lib.names[:3] and run["params"]["reconstruction_rmse"] < 0.05
    assert cli_run(["unmix", "abundances", str(path), "--endmembers", str(em / "endmembers.sli"), "--rgb", "4,2",
                    "--method", "nnls", "--out", str(tmp_path / "ab2")]) == 0
    assert json.loads((tmp_path / "ab2" / "run.json").read_text())["params"]["rgb"] == [lib.names[3], lib.names[1]]
    assert cli_run(["unmix", "abundances", str(path), "--endmembers", str(em / "endmembers.sli"), "--rgb", "9",
                    "--out", str(tmp_path / "ab3")]) == 2


def test_bad_inputs_exit_2(cube, tmp_path, capsys):
    path, _ = cube
    assert cli_run(["unmix", "endmembers", str(path), "--p", "500", "--method", "vca", "--out",
                    str(tmp_path / "x")]) == 2
    assert "more than" in capsys.readouterr().err
    assert cli_run(["unmix", "endmembers", str(path), "--p", "four", "--out", str(tmp_path / "y")]) == 2
    assert cli_run(["unmix", "count", str(tmp_path / "missing.img")]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("wavelength_nm,a\n1000,0.5\n1010,0.6\n", encoding="utf-8")
    assert cli_run(["unmix", "abundances", str(path), "--endmembers", str(bad), "--out", str(tmp_path / "z")]) == 2
    assert "bands" in capsys.readouterr().err
    assert not (tmp_path / "z" / "abundances.img").exists()


def test_count_and_endmembers_on_real_chip_with_band_selection(tmp_path, capsys):
    import json

    from orbitml.cli.main import cli_run
    from orbitml.spectra import read_library
    from tests.conftest import shared_file

    chip = shared_file("hsi/envi/ang20150420t182808_corr_v1e_img_4200-4210_70-80.img")
    # 100 pixels for 432 bands: HFC alone, said so, no failure
    assert cli_run(["unmix", "count", str(chip), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["hysime"] is None and est["notes"] and est["n_bands"] <= 432
    assert cli_run(["unmix", "count", str(chip), "--bands", "1000-1300,1500-1750,2000-2400", "--bin", "4",
                    "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["hysime"] is not None and est["n_bands"] < 100
    assert not any("too few" in n for n in est["notes"]) and est["notes"][0].startswith("auto:")
    assert cli_run(["unmix", "endmembers", str(chip), "--bands", "1000-2400", "--bin", "4", "--p", "3",
                    "--out", str(tmp_path / "em")]) == 0
    lib = read_library(tmp_path / "em" / "endmembers.sli")
    assert len(lib) == 3 and 1000 <= lib.wavelength.min() and lib.wavelength.max() <= 2400
    assert cli_run(["unmix", "count", str(chip), "--bands", "2400-1000"]) == 2


def test_count_refuses_a_cube_larger_than_the_memory_limit(tmp_path, capsys, monkeypatch):
    from orbitml.cli.main import cli_run
    from orbitml.io import write_scene
    from orbitml.scene import make_scene

    cube = write_scene(make_scene(np.random.default_rng(0).random((4, 30, 30)).astype(np.float32)),
                       tmp_path / "c.tif")
    monkeypatch.setenv("ORBITML_MAX_MEMORY", "20K")
    assert cli_run(["unmix", "count", str(cube)]) == 2
    err = capsys.readouterr().err
    assert " in memory, more than the limit" in err and "ORBITML_MAX_MEMORY" in err and "c.tif" in err
    monkeypatch.setenv("ORBITML_MAX_MEMORY", "1G")
    assert cli_run(["unmix", "count", str(cube), "--json"]) == 0
