"""Less common containers: a PDS3 label pointing at a JPEG2000 file, PDS4 through GDAL, JP2 by content,
and a CRISM-style product whose label names its own wavelength table."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from orbitml.io import open_scene


def _write_jp2(path, data):
    prof = dict(driver="JP2OpenJPEG", height=data.shape[0], width=data.shape[1], count=1, dtype="uint16",
                QUALITY=100, REVERSIBLE="YES")
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(data, 1)


def test_pds3_label_pointing_at_jp2(tmp_path):
    data = (np.arange(64 * 48, dtype=np.uint16) % 1000).reshape(48, 64)
    _write_jp2(tmp_path / "image.jp2", data)
    (tmp_path / "image.lbl").write_text(
        "PDS_VERSION_ID = PDS3\r\nRECORD_TYPE = UNDEFINED\r\n^IMAGE = \"image.jp2\"\r\nINSTRUMENT_ID = HIRISE\r\n"
        "OBJECT = IMAGE\r\n LINES = 48\r\n LINE_SAMPLES = 64\r\n SAMPLE_BITS = 16\r\n"
        " SAMPLE_TYPE = LSB_UNSIGNED_INTEGER\r\nEND_OBJECT = IMAGE\r\nEND\r\n")
    sc = open_scene(tmp_path / "image.lbl")
    np.testing.assert_array_equal(sc.values[0], data)  # reversible JPEG2000: lossless
    assert sc.attrs["instrument"] == "HIRISE"
    jp2 = open_scene(tmp_path / "image.jp2")  # detected by its magic bytes
    assert jp2.attrs["format"] == "JPEG2000"


def test_pds4_through_gdal(tmp_path):
    path = tmp_path / "product.xml"
    data = np.arange(6 * 5, dtype=np.float32).reshape(1, 6, 5)
    with rasterio.open(path, "w", driver="PDS4", height=6, width=5, count=1, dtype="float32",
                       transform=Affine(10, 0, 0, 0, -10, 0)) as ds:
        ds.write(data)
    sc = open_scene(path)
    assert sc.attrs["format"] == "PDS4"
    np.testing.assert_array_equal(sc.values, data)


def test_crism_label_wavelength_table_beside_product(tmp_path):
    lines, samples, bands = 3, 4, 5
    pix = np.arange(lines * samples * bands, dtype="<f4").reshape(bands, lines, samples)
    (tmp_path / "T0001_MRRIF_TEST.IMG").write_bytes(pix.tobytes())
    (tmp_path / "T0001_MRRWV_TEST.TAB").write_text(
        "".join(f"{i},{w:.3f},{10.0:.1f}\r\n" for i, w in enumerate([1020.0, 1500.5, 1900.0, 2300.25, 2600.0])))
    (tmp_path / "T0001_MRRIF_TEST.LBL").write_text(
        "PDS_VERSION_ID = PDS3\r\nRECORD_TYPE = FIXED_LENGTH\r\nRECORD_BYTES = 16\r\nFILE_RECORDS = 15\r\n"
        "^IMAGE = \"T0001_MRRIF_TEST.IMG\"\r\nINSTRUMENT_ID = CRISM\r\n"
        "MRO:WAVELENGTH_FILE_NAME = \"T0001_MRRWV_TEST.TAB\"\r\nOBJECT = IMAGE\r\n LINES = 3\r\n LINE_SAMPLES = 4\r\n"
        " SAMPLE_TYPE = PC_REAL\r\n SAMPLE_BITS = 32\r\n BANDS = 5\r\n BAND_STORAGE_TYPE = BAND_SEQUENTIAL\r\n"
        "END_OBJECT = IMAGE\r\nEND\r\n")
    sc = open_scene(tmp_path / "T0001_MRRIF_TEST.LBL")
    np.testing.assert_array_equal(sc.values, pix)
    np.testing.assert_allclose(sc.wavelength.values, [1020.0, 1500.5, 1900.0, 2300.25, 2600.0])
    # the same product, band-interleaved by line, must give the same cube
    (tmp_path / "bil.IMG").write_bytes(np.ascontiguousarray(pix.transpose(1, 0, 2)).tobytes())
    (tmp_path / "bil.LBL").write_text(
        (tmp_path / "T0001_MRRIF_TEST.LBL").read_text().replace("T0001_MRRIF_TEST.IMG", "bil.IMG")
        .replace("BAND_SEQUENTIAL", "LINE_INTERLEAVED"))
    np.testing.assert_array_equal(open_scene(tmp_path / "bil.LBL").values, pix)


@pytest.mark.parametrize("interleave", ["bil", "bip"])
def test_envi_interleaves(tmp_path, interleave):
    pix = np.random.default_rng(3).random((4, 6, 7)).astype(np.float32)
    arr = pix.transpose(1, 0, 2) if interleave == "bil" else pix.transpose(1, 2, 0)
    (tmp_path / "c.dat").write_bytes(np.ascontiguousarray(arr).tobytes())
    (tmp_path / "c.hdr").write_text(
        f"ENVI\nsamples = 7\nlines = 6\nbands = 4\nheader offset = 0\nfile type = ENVI Standard\ndata type = 4\n"
        f"interleave = {interleave}\nbyte order = 0\nwavelength units = Micrometers\n"
        "wavelength = { 1.0, 1.5, 2.0, 2.5 }\n")
    sc = open_scene(tmp_path / "c.hdr")
    np.testing.assert_array_equal(sc.values, pix)
    np.testing.assert_allclose(sc.wavelength.values, [1000, 1500, 2000, 2500])
