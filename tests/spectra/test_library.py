"""SpectralLibrary container, CSV and ENVI round trips on synthetic data, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.spectra import LibraryKeyError, SpectralLibrary, read_library, write_library


@pytest.fixture
def lib():
    rng = np.random.default_rng(0)
    wl = np.linspace(400.0, 2500.0, 57)
    s = rng.uniform(0.01, 0.9, (6, wl.size))
    s[1, 10:14] = np.nan  # missing channels
    names = ["Kaolinite CM9", "Kaolinite KGa-1", "Nontronite NG-1", "Jarosite GDS99", "Calcite WS272", "x, y"]
    return SpectralLibrary(s, wl, names, fwhm=np.full(wl.size, 10.5), metadata={"note": "t"})


def test_container_selection(lib):
    assert len(lib) == 6 and lib.n_bands == 57
    assert lib["Kaolinite"].names == ["Kaolinite CM9", "Kaolinite KGa-1"]  # regex search
    assert lib["kaolinite  cm9"].names == ["Kaolinite CM9"]  # exact name, whitespace and case ignored
    assert lib[2].names == ["Nontronite NG-1"] and len(lib[1:3]) == 2 and len(lib[[0, 4]]) == 2
    assert lib[np.arange(6) > 3].names == ["Calcite WS272", "x, y"]
    assert lib.select(r"^(Jarosite|Calcite)").names == ["Jarosite GDS99", "Calcite WS272"]
    assert lib.select(names=["calcite ws272"]).names == ["Calcite WS272"]
    np.testing.assert_array_equal(lib.spectrum("Calcite WS272"), lib.spectra[4])
    np.testing.assert_array_equal(lib.to_numpy(), lib.spectra)
    assert lib.to_numpy() is not lib.spectra
    with pytest.raises(LibraryKeyError):
        lib["Olivine"]
    with pytest.raises(KeyError):  # a KeyError as well, for dict-like use
        lib["Olivine"]
    with pytest.raises(LibraryKeyError, match="matches 2"):
        lib.spectrum("Kaolinite")
    with pytest.raises(IndexError):
        lib[6]
    assert [n for n, _ in lib] == lib.names


def test_validation():
    with pytest.raises(OrbitmlInputError, match="ascending"):
        SpectralLibrary(np.ones((1, 3)), [3.0, 2.0, 1.0])
    with pytest.raises(OrbitmlInputError, match="2 wavelengths"):
        SpectralLibrary(np.ones((1, 3)), [1.0, 2.0])
    with pytest.raises(OrbitmlInputError, match="names"):
        SpectralLibrary(np.ones((2, 2)), [1.0, 2.0], ["a"])


@pytest.mark.parametrize("suffix", [".sli", ".csv"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_exact(lib, tmp_path, suffix, dtype):
    lib = SpectralLibrary(lib.spectra.astype(dtype), lib.wavelength, lib.names, lib.fwhm)
    out = write_library(lib, tmp_path / f"lib{suffix}")
    back = read_library(out)
    np.testing.assert_array_equal(back.spectra, lib.spectra)
    np.testing.assert_array_equal(back.wavelength, lib.wavelength)
    np.testing.assert_array_equal(back.fwhm, lib.fwhm)
    if suffix == ".csv":
        assert back.names == lib.names  # CSV quotes names with commas
    else:
        assert back.names == lib.names[:5] + ["x; y"]  # ENVI lists cannot hold commas
        assert back.spectra.dtype == dtype
        hdr = (tmp_path / "lib.hdr").read_text()
        assert "wavelength units = Nanometers" in hdr and "data ignore value = -1.23e+34" in hdr
        assert "file type = ENVI Spectral Library" in hdr
        raw = np.fromfile(out, dtype="<f4" if dtype == np.float32 else "<f8").reshape(6, 57)
        assert raw[1, 10] == np.asarray(-1.23e34, dtype=dtype)  # NaN written as the ignore value
    assert sorted(p.name for p in tmp_path.iterdir()) == (["lib.csv"] if suffix == ".csv" else ["lib.hdr", "lib.sli"])


def test_write_refuses_to_overwrite(lib, tmp_path):
    write_library(lib, tmp_path / "a.sli")
    with pytest.raises(OrbitmlInputError, match="exists"):
        write_library(lib, tmp_path / "a.sli")
    write_library(lib[:2], tmp_path / "a.sli", overwrite=True)
    assert len(read_library(tmp_path / "a.sli")) == 2
    with pytest.raises(OrbitmlInputError, match="unknown library format"):
        write_library(lib, tmp_path / "a.xyz")


def test_csv_in_micrometres_with_missing_cells(tmp_path):
    p = tmp_path / "um.csv"
    p.write_text('Wavelength (um),quartz,"ice, fine"\n2.0,0.5,\n1.0,0.4,0.9\n1.5,,0.8\n')
    lib = read_library(p)
    np.testing.assert_array_equal(lib.wavelength, [1000.0, 1500.0, 2000.0])  # sorted ascending, nm
    np.testing.assert_array_equal(lib.spectra, [[0.4, np.nan, 0.5], [0.9, 0.8, np.nan]])
    assert lib.names == ["quartz", "ice, fine"]


def test_wavelength_override_and_axis_file(lib, tmp_path):
    out = write_library(lib, tmp_path / "l.csv")
    wl_file = tmp_path / "wl.txt"
    wl_file.write_text(" Record=1: Wavelengths in microns\n" + "\n".join(str(v / 1000) for v in lib.wavelength + 1))
    back = read_library(out, wavelengths=wl_file)
    np.testing.assert_allclose(back.wavelength, lib.wavelength + 1, rtol=1e-12)
    with pytest.raises(OrbitmlInputError, match="57 bands"):
        read_library(out, wavelengths=np.arange(10.0))


def test_bad_input(lib, tmp_path):
    with pytest.raises(OrbitmlInputError, match="not found"):
        read_library(tmp_path / "nope.sli")
    out = write_library(lib, tmp_path / "t.sli")
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(OrbitmlInputError, match="truncated") as e:
        read_library(out)
    assert str(out) in str(e.value)
    cube_hdr = tmp_path / "cube.hdr"
    cube_hdr.write_text(
        "ENVI\nsamples = 2\nlines = 2\nbands = 3\ndata type = 4\ninterleave = bsq\n"
        "file type = ENVI Standard\nbyte order = 0\nheader offset = 0\n"
    )
    (tmp_path / "cube.img").write_bytes(np.zeros(12, "<f4").tobytes())
    with pytest.raises(OrbitmlInputError, match="open_scene"):
        read_library(tmp_path / "cube.img")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(OrbitmlInputError, match="not an ENVI spectral library"):
        read_library(binary)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("wavelength_nm,a\n500,0.1\n600,abc\n")
    with pytest.raises(OrbitmlInputError, match="'abc' is not a number"):
        read_library(bad_csv)
    dup = tmp_path / "dup.csv"
    dup.write_text("wavelength_nm,a\n500,0.1\n500,0.2\n")
    with pytest.raises(OrbitmlInputError, match="duplicates"):
        read_library(dup)
    no_wl = tmp_path / "rec.txt"
    no_wl.write_text(" splib07a Record=5: Thing ABCDa AREF\n0.1\n0.2\n0.3\n")
    with pytest.raises(OrbitmlInputError, match="no wavelength file"):
        read_library(no_wl)
    with pytest.raises(OrbitmlInputError, match="folder"):
        read_library(tmp_path)


def test_csv_beside_envi_library_of_same_stem_is_read_as_csv(lib, tmp_path):
    write_library(lib, tmp_path / "same.sli")
    write_library(lib[:2], tmp_path / "same.csv")
    assert read_library(tmp_path / "same.csv").metadata["format"] == "csv"
    assert len(read_library(tmp_path / "same.csv")) == 2 and len(read_library(tmp_path / "same.sli")) == 6


def test_envi_library_without_wavelengths_needs_them(lib, tmp_path):
    out = write_library(lib, tmp_path / "nowl.sli")
    hdr = out.with_suffix(".hdr")
    text = hdr.read_text()
    start = text.index("wavelength = {")
    hdr.write_text(text[:start] + text[text.index("}", start) + 1 :])
    with pytest.raises(OrbitmlInputError, match="no wavelengths"):
        read_library(out)
    back = read_library(out, wavelengths=lib.wavelength * 2)
    np.testing.assert_array_equal(back.wavelength, lib.wavelength * 2)
    np.testing.assert_array_equal(back.spectra, lib.spectra)
