"""orbitml unmix abundances CUBE --library LIB: cube with band names + residual band, selected spectra, bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from orbitml.cli.main import cli_run
from orbitml.io import open_scene, write_scene
from orbitml.scene import make_scene
from orbitml.spectra import SpectralLibrary, read_library, write_library


@pytest.fixture(scope="module")
def scene_and_lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("libcli")
    rng = np.random.default_rng(0)
    wl = np.linspace(1000, 2500, 60)
    t = (wl - 1000) / 1500
    E = np.array([0.3 + 0.2 * np.sin(2 * np.pi * (k % 7 + 1) * t + k) * (1 + 0.1 * (k // 7)) for k in range(21)])
    names = [f"{['kaolinite', 'alunite', 'calcite'][k % 3]}_{k}" for k in range(21)]
    lib = SpectralLibrary(E, wl, names)
    write_library(lib, d / "lib.csv")
    true = [0, 4, 8]
    h, w = 12, 15
    A = np.zeros((h * w, 21))
    A[:, true] = rng.dirichlet(np.ones(3), h * w)
    X = A @ E + rng.normal(0, 0.002, (h * w, 60))
    cube = make_scene(X.T.reshape(60, h, w).astype(np.float32), wavelength=wl, crs="EPSG:32612",
                      transform=Affine(30, 0, 5e5, 0, -30, 4e6))
    write_scene(cube, d / "cube.img")
    return d, lib, A, true, X


@pytest.mark.parametrize("method", ["fcls", "sunsal"])
def test_library_abundances_end_to_end(scene_and_lib, tmp_path, method):
    d, lib, A, true, X = scene_and_lib
    out = tmp_path / method
    assert cli_run(["unmix", "abundances", str(d / "cube.img"), "--library", str(d / "lib.csv"), "--method", method,
                    "--out", str(out), "--format", "gtiff", "--rows-per-block", "5",
                    "--min-abundance", "0"]) == 0  # every spectrum with any abundance is written
    with rasterio.open(out / "abundances.tif") as ds:
        data = ds.read()
        names = list(ds.descriptions)
        assert ds.crs.to_epsg() == 32612
    assert names[-1] == "residual_rmse"
    rows = list(csv.DictReader(open(out / "selected_spectra.csv", encoding="utf-8")))
    assert [r["name"] for r in rows] == names[:-1]
    assert {lib.names[i] for i in true} == {r["name"] for r in rows[:3]}
    # the bands are the same numbers as the library call on all pixels
    from orbitml.unmix import fcls, sunsal

    Xc = open_scene(d / "cube.img").values.reshape(60, -1).T.astype(np.float64)
    ref = fcls(Xc, lib.spectra) if method == "fcls" else sunsal(Xc, lib.spectra,
                                                                 json.loads((out / "run.json").read_text())
                                                                 ["params"]["lambda"])
    got = np.zeros_like(ref)
    for k, r in enumerate(rows):
        got[:, int(r["library_index"]) - 1] = data[k].ravel()
    if method == "fcls":
        np.testing.assert_allclose(got, ref, atol=1e-5)
    else:
        # this library spans 15 dimensions with 21 spectra (rank-deficient), so the non-negative lasso
        # optimum is a set, not a point: the CLI's blocks of rows and the one call may pick different
        # members of it; each pixel's objective must be the optimum's
        lam = json.loads((out / "run.json").read_text())["params"]["lambda"]

        def objective(a):
            return 0.5 * np.sum((Xc - a @ lib.spectra) ** 2, axis=1) + lam * np.abs(a).sum(axis=1)

        np.testing.assert_allclose(objective(got), objective(ref), rtol=1e-4, atol=1e-9)
        assert np.median(np.abs(got - ref).max(axis=1)) < 1e-5  # and most pixels the same abundances
    resid = np.sqrt(np.mean((got @ lib.spectra - Xc) ** 2, axis=1))
    np.testing.assert_allclose(data[-1].ravel(), resid, rtol=1e-4, atol=1e-7)
    sel = read_library(out / "selected_library.csv")
    assert sel.names == names[:-1]


def test_library_classes_give_class_bands(scene_and_lib, tmp_path):
    d, lib, A, true, X = scene_and_lib
    out = tmp_path / "cls"
    assert cli_run(["unmix", "abundances", str(d / "cube.img"), "--library", str(d / "lib.csv"), "--class",
                    "Kaolinite=kaolin", "--class", "Alunite=alun", "--out", str(out)]) == 0
    ab = open_scene(out / "abundances.img")
    assert list(ab.coords["band_name"].values) == ["Kaolinite", "Alunite", "residual_rmse"]
    v = ab.values[:2].reshape(2, -1)
    np.testing.assert_allclose(v.sum(axis=0), 1.0, atol=1e-5)  # FCLS over the two bundles


def test_library_bad_inputs_one_line(scene_and_lib, tmp_path, capsys):
    d, lib, A, true, X = scene_and_lib
    cube = str(d / "cube.img")
    base = ["unmix", "abundances", cube, "--library"]
    far = SpectralLibrary(lib.spectra[:, :30], lib.wavelength[:30], lib.names)  # 1000-1750 nm only
    write_library(far, tmp_path / "short.csv")
    nan = SpectralLibrary(np.vstack([lib.spectra[:3], np.full(60, np.nan)]), lib.wavelength)
    write_library(nan, tmp_path / "nan.csv")
    dup = SpectralLibrary(np.vstack([lib.spectra[:3], lib.spectra[1]]), lib.wavelength, ["a", "b", "c", "d"])
    write_library(dup, tmp_path / "dup.csv")
    cases = [
        (["short.csv"], "cannot be resampled"), (["nan.csv"], "missing values"), (["dup.csv"], "identical"),
        ([str(d / "lib.csv"), "--method", "sunsal", "--lambda", "-1"], "lambda"),
        ([str(d / "lib.csv"), "--method", "sunsal", "--lambda", "nan"], "lambda"),
        ([str(d / "lib.csv"), "--class", "Gypsum=gyps"], "no spectrum"),
        ([str(d / "lib.csv"), "--class", "Gypsum"], "NAME=PATTERN"),
    ]
    for i, (args, msg) in enumerate(cases):
        args = [str(tmp_path / args[0]) if not args[0].startswith("/") else args[0]] + args[1:]
        out = tmp_path / f"o{i}"
        assert cli_run(base + args + ["--out", str(out)]) == 2, args
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
        assert not (out / "abundances.img").exists()


def test_library_resampled_when_it_covers_the_scene(scene_and_lib, tmp_path):
    d, lib, A, true, X = scene_and_lib
    fine_wl = np.linspace(950, 2550, 321)
    fine = SpectralLibrary(np.array([np.interp(fine_wl, lib.wavelength, s) for s in lib.spectra]), fine_wl, lib.names)
    write_library(fine, tmp_path / "fine.csv")
    out = tmp_path / "rs"
    assert cli_run(["unmix", "abundances", str(d / "cube.img"), "--library", str(tmp_path / "fine.csv"), "--out",
                    str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert any("resampled" in n for n in run["params"]["notes"])
    rows = list(csv.DictReader(open(out / "selected_spectra.csv", encoding="utf-8")))
    assert {lib.names[i] for i in true} == {r["name"] for r in rows[:3]}


def test_library_clsunsal_selects_then_nnls(scene_and_lib, tmp_path):
    d, lib, A, true, X = scene_and_lib
    out = tmp_path / "cl"
    assert cli_run(["unmix", "abundances", str(d / "cube.img"), "--library", str(d / "lib.csv"), "--method",
                    "clsunsal", "--max-pixels", "100", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "selected_spectra.csv", encoding="utf-8")))
    assert {lib.names[i] for i in true} == {r["name"] for r in rows[:3]}
    run = json.loads((out / "run.json").read_text())
    assert run["params"]["lambda"] > 0 and any("CLSUnSAL selected" in n for n in run["params"]["notes"])
