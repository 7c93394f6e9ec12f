"""orbitml library info / resample / augment (CLI end to end, real USGS and AVIRIS-NG files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from orbitml.cli.main import cli_run
from orbitml.spectra import SpectralLibrary, read_library, resample_to_bands, write_library
from tests.conftest import shared_file


@pytest.fixture()
def small_lib(tmp_path):
    wl = np.linspace(1000, 2500, 60)
    S = 0.3 + 0.2 * np.sin(wl[None, :] / 250.0 + np.arange(3)[:, None])
    path = tmp_path / "lib.csv"
    write_library(SpectralLibrary(S, wl, ["kaolinite", "alunite", "jarosite"]), path)
    return path, S, wl


def test_info_json(small_lib, capsys):
    path, S, wl = small_lib
    assert cli_run(["library", "info", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_spectra"] == 3 and d["n_bands"] == 60 and d["wavelength_nm"] == [1000.0, 2500.0]


def test_augment_cli_seeded_labels(small_lib, tmp_path, capsys):
    path, S, wl = small_lib
    args = ["library", "augment", str(path), "--n-per-class", "500", "--select", "kaol|alun", "--seed", "4",
            "--include-original"]
    assert cli_run([*args, "--out", str(tmp_path / "a.sli")]) == 0
    assert cli_run([*args, "--out", str(tmp_path / "b.sli")]) == 0
    a, b = read_library(tmp_path / "a.sli"), read_library(tmp_path / "b.sli")
    assert len(a) == 1000 and a.names.count("kaolinite") == 500 and "jarosite" not in a.names
    np.testing.assert_array_equal(a.spectra, b.spectra)
    np.testing.assert_allclose(a.spectra[0], S[0], rtol=1e-6)  # the clean original first
    run = json.loads((tmp_path / "a.run.json").read_text())
    assert run["seed"] == 4 and run["params"]["classes"] == ["kaolinite", "alunite"]
    assert cli_run([*args, "--out", str(tmp_path / "a.sli")]) == 2  # exists, no --overwrite
    assert cli_run(["library", "augment", str(path), "--select", "nothing-like-this", "--out",
                    str(tmp_path / "c.sli")]) == 2


def test_augment_snr_table(small_lib, tmp_path):
    path, S, wl = small_lib
    tab = tmp_path / "snr.csv"
    tab.write_text("wavelength_nm,snr\n1000,1000000\n2500,20\n", encoding="utf-8")
    out = tmp_path / "n.csv"
    assert cli_run(["library", "augment", str(path), "--n-per-class", "2000", "--select", "kaolinite",
                    "--offset", "0", "--scale", "1", "1", "--tilt", "0", "--min-fraction", "1",
                    "--snr-table", str(tab), "--out", str(out)]) == 0
    X = read_library(out).spectra
    snr = np.interp(wl, [1000, 2500], [1e6, 20])
    np.testing.assert_allclose(X.std(axis=0)[-10:], (S[0] / snr)[-10:], rtol=0.1)
    assert X.std(axis=0)[0] < 1e-5


def test_resample_to_real_aviris_ng_header(tmp_path, capsys):
    lib = shared_file("hsi/envi/s07_AV95_envi.sli")
    hdr = shared_file("hsi/envi/ang20150420t182808_corr_v1e_img_4200-4210_70-80.hdr")
    out = tmp_path / "ang.sli"
    assert cli_run(["library", "resample", str(lib), "--to", str(hdr), "--out", str(out)]) == 0
    res = read_library(out)
    src = read_library(lib)
    from orbitml.io.envi import header_facts

    f = header_facts(hdr)
    assert res.n_bands == 432 and len(res) == len(src)
    np.testing.assert_allclose(res.wavelength, f["wavelength"], rtol=1e-6)
    with pytest.warns(RuntimeWarning, match="outside the source range"):
        ref = resample_to_bands(src.spectra[:5], src.wavelength, f["wavelength"], f["fwhm"])
    np.testing.assert_allclose(res.spectra[:5], ref, rtol=1e-5, equal_nan=True)


def test_resample_csv_without_fwhm(small_lib, tmp_path, capsys):
    path, S, wl = small_lib
    sensor = tmp_path / "sensor.csv"
    sensor.write_text("wavelength_um\n" + "\n".join(f"{w:.3f}" for w in np.arange(1.1, 2.4, 0.1)), encoding="utf-8")
    out = tmp_path / "r.csv"
    assert cli_run(["library", "resample", str(path), "--to", str(sensor), "--out", str(out)]) == 0
    r = read_library(out)
    np.testing.assert_allclose(r.wavelength, np.arange(1100, 2400, 100), atol=1e-6)
    assert "band spacing" in capsys.readouterr().err
    assert cli_run(["library", "resample", str(path), "--to", str(tmp_path / "no.csv"), "--out",
                    str(tmp_path / "x.csv")]) == 2


def test_augment_grouped_classes_are_bundles(tmp_path, capsys):
    wl = np.linspace(1000, 2500, 40)
    S = 0.3 + 0.05 * np.arange(5)[:, None] + 0.01 * np.sin(wl[None, :] / 300.0)
    names = ["Kaolinite KGa-1", "Kaolinite CM9", "Nontronite NG-1", "Nontronite SWa", "Calcite"]
    path = tmp_path / "lib.csv"
    write_library(SpectralLibrary(S, wl, names), path)
    out = tmp_path / "g.sli"
    assert cli_run(["library", "augment", str(path), "--class", "Kaolinite=kaolin", "--class", "Smectite=nontron",
                    "--n-per-class", "300", "--min-fraction", "1", "--offset", "0", "--scale", "1", "1",
                    "--tilt", "0", "--snr", "1e9", "--out", str(out)]) == 0
    lib = read_library(out)
    assert sorted(set(lib.names)) == ["Kaolinite", "Smectite"] and len(lib) == 600
    kao = lib.spectra[np.array(lib.names) == "Kaolinite"]
    # with no perturbation every augmented spectrum is one of the class's two members, and both are used
    d = np.abs(kao[:, None, :] - S[None, :2, :]).max(axis=2)
    assert d.min(axis=1).max() < 1e-5
    assert set(d.argmin(axis=1).tolist()) == {0, 1}
    run = json.loads((tmp_path / "g.run.json").read_text())
    assert run["params"]["members"]["Smectite"] == ["Nontronite NG-1", "Nontronite SWa"]
    assert cli_run(["library", "augment", str(path), "--class", "X=nomatch", "--out", str(tmp_path / "h.sli")]) == 2
    assert "no spectrum named or matching 'nomatch'" in capsys.readouterr().err
    assert cli_run(["library", "augment", str(path), "--class", "A=Kaolin", "--class", "B=KGa",
                    "--out", str(tmp_path / "h.sli")]) == 2
    assert "matches both class" in capsys.readouterr().err
    assert cli_run(["library", "augment", str(path), "--class", "nopattern", "--out", str(tmp_path / "h.sli")]) == 2
    assert not (tmp_path / "h.sli").exists()
