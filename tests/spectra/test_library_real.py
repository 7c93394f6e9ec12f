"""Spectral libraries from the real files in ../shared/data/hsi."""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.spectra import read_library, write_library
from tests.conftest import shared_file

NOT_SPECTRA = ("wavelengths in", "resolution", "error bars", "bandpass")


def _check_clean(lib):
    assert not any(n.strip().lower().startswith(NOT_SPECTRA) for n in lib.names)
    assert all(n.strip() for n in lib.names)
    assert np.all(np.diff(lib.wavelength) > 0)
    assert np.isfinite(lib.spectra).any(axis=1).all()  # no all-missing rows
    finite = lib.spectra[np.isfinite(lib.spectra)]
    assert finite.min() >= -0.05 and finite.max() <= 2.0  # plausible reflectance, no ignore values left


def test_splib07_av95_sli():
    path = shared_file("hsi/envi/s07_AV95_envi.sli")
    lib = read_library(path)
    names = [ln for ln in path.with_suffix(".hdr").read_text().split("spectra names")[1].split(",")]
    n_error_bars = sum("error bars to preceding" in n for n in names)
    assert n_error_bars == 680
    assert len(lib) == 3139 - 680 - 2 == 2457  # minus error bars, the wavelength and resolution rows
    assert lib.n_bands == 224 and lib.spectra.dtype == np.float32
    _check_clean(lib)
    # header is in micrometres: 0.38315 um -> 383.15 nm, fwhm 0.00994 um -> 9.94 nm
    assert lib.wavelength[0] == pytest.approx(383.15) and lib.wavelength[-1] == pytest.approx(2508.2)
    assert lib.fwhm[0] == pytest.approx(9.94)
    assert lib.names[0].startswith("Acmite NMNH133746")
    assert len(lib["Kaolinite"]) > 5 and len(lib.select(r"^Nontronite")) >= 1
    # the ignore value became NaN (USGS deleted points), none left as a huge negative number
    assert np.isnan(lib.spectra).any() and np.nanmin(lib.spectra) > -1
    assert lib.metadata["dropped_rows"] == 682


def test_splib06_av95_sli_float64(shared_data):
    lib = read_library(shared_data / "hsi/envi/s06av95a_envi.hdr")  # header path works too
    assert len(lib) == 1365 and lib.n_bands == 224 and lib.spectra.dtype == np.float64
    _check_clean(lib)
    assert lib.names[0].startswith("Acmite NMNH133746 Pyroxene")
    assert lib.wavelength[0] == pytest.approx(383.15)


def test_splib07_ascii_record_finds_its_wavelength_file():
    path = shared_file("hsi/splib07_ascii/splib07a_Brick_GDS355_Paving_Dk_Gry_ASDFRa_AREF.txt")
    lib = read_library(path)
    assert len(lib) == 1 and lib.n_bands == 2151
    assert lib.names == ["Brick GDS355 Paving Dk Gry   ASDFRa AREF"]
    assert lib.wavelength[0] == pytest.approx(350.0, abs=1e-3) and lib.wavelength[-1] == pytest.approx(2500.0)
    assert "Wavelengths" in lib.metadata["wavelength_file"]
    assert lib.fwhm is None  # the bandpass file beside it is for ASDNG, not this ASDFR record
    # independent parse of the first value
    first = float(path.read_text().splitlines()[1])
    assert lib.spectra[0, 0] == pytest.approx(first)
    _check_clean(lib)


def test_splib07_ascii_explicit_wavelengths_and_fwhm(shared_data):
    d = shared_data / "hsi/splib07_ascii"
    rec = d / "splib07a_Brick_GDS355_Paving_Dk_Gry_ASDFRa_AREF.txt"
    wl_file = d / "s07_ASD_Wavelengths_ASD_0.35-2.5_microns_2151_ch.txt"
    bp_file = d / "splib07a_Bandpass_(FWHM)_ASDNG_High-Res_NextGen.txt"
    lib = read_library(rec, wavelengths=wl_file, fwhm=bp_file)
    assert lib.fwhm[0] == pytest.approx(8.6500905, rel=1e-6)  # micrometres -> nm
    with pytest.raises(OrbitmlInputError, match="axis record"):
        read_library(wl_file)
    with pytest.raises(OrbitmlInputError, match="2151"):
        read_library(rec, wavelengths=np.arange(100.0))


def test_real_library_round_trips_exactly(tmp_path):
    lib = read_library(shared_file("hsi/envi/s07_AV95_envi.sli"))[:40]
    out = write_library(lib, tmp_path / "sub.sli")
    back = read_library(out)
    assert back.names == [" ".join(n.split()) for n in lib.names]
    np.testing.assert_array_equal(back.spectra, lib.spectra)  # NaN positions included
    np.testing.assert_array_equal(back.wavelength, lib.wavelength)
    np.testing.assert_array_equal(back.fwhm, lib.fwhm)
    assert back.spectra.dtype == np.float32
