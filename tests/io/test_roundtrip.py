"""ENVI and GeoTIFF round trips keep values, wavelengths, CRS, transform and nodata; bad input fails clearly."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from orbitml.errors import OrbitmlInputError
from orbitml.io import open_scene, write_scene
from orbitml.scene import make_scene

MARS_EQC = (
    'PROJCS["Mars Equirectangular",GEOGCS["GCS_Mars",DATUM["D_Mars",SPHEROID["Mars",3396190,0]],'
    'PRIMEM["Reference_Meridian",0],UNIT["degree",0.0174532925199433]],PROJECTION["Equirectangular"],'
    'PARAMETER["standard_parallel_1",0],PARAMETER["central_meridian",0],PARAMETER["false_easting",0],'
    'PARAMETER["false_northing",0],UNIT["metre",1]]'
)


def _scene(dtype=np.float32, nodata=-9999.0):
    rng = np.random.default_rng(1)
    data = rng.random((5, 7, 9)).astype(dtype)
    data[:, 2, 3] = nodata
    return make_scene(data, wavelength=[1000.5, 1200.25, 1500.0, 2000.0, 2500.125], fwhm=[10, 10, 12, 12, 15],
                      crs=MARS_EQC, transform=Affine(18.0, 0, 100000.0, 0, -18.0, 250000.0), nodata=nodata,
                      attrs={"instrument": "CRISM", "product_id": "SIM1"})


@pytest.mark.parametrize("fmt,name", [("envi", "cube.img"), ("gtiff", "cube.tif"), ("cog", "cube_cog.tif")])
def test_round_trip(tmp_path, fmt, name):
    sc = _scene()
    out = write_scene(sc, tmp_path / name, format=fmt)
    back = open_scene(out)
    np.testing.assert_array_equal(back.values, sc.values)
    np.testing.assert_allclose(back.coords["wavelength"].values, sc.coords["wavelength"].values, rtol=1e-6)
    np.testing.assert_allclose(back.coords["fwhm"].values, sc.coords["fwhm"].values, rtol=1e-6)
    assert back.rio.transform().almost_equals(sc.rio.transform())
    assert back.rio.crs is not None and "Equirectangular" in back.rio.crs.to_wkt()
    assert back.rio.nodata == -9999.0
    # nothing else left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [name] + ([name.replace(".img", ".hdr")] if fmt == "envi" else []))


def test_envi_header_fields(tmp_path):
    write_scene(_scene(), tmp_path / "c.img")
    hdr = (tmp_path / "c.hdr").read_text()
    for key in ("wavelength = {", "wavelength units = Nanometers", "data ignore value", "map info",
                "coordinate system string", "band names"):
        assert key in hdr


def test_integer_class_map_and_dask_scene(tmp_path):
    labels = np.arange(40, dtype=np.uint8).reshape(1, 5, 8)
    sc = make_scene(labels, nodata=255)
    back = open_scene(write_scene(sc, tmp_path / "labels.tif"))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back.values, labels)
    lazy = _scene().chunk({"y": 3, "x": 4})
    np.testing.assert_array_equal(open_scene(write_scene(lazy, tmp_path / "lazy.img")).values, _scene().values)


def test_refuses_existing_output(tmp_path):
    p = write_scene(_scene(), tmp_path / "a.tif")
    with pytest.raises(OrbitmlInputError, match="exists"):
        write_scene(_scene(), p)
    write_scene(_scene(), p, overwrite=True)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import orbitml.io.write as w

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(w, "_write_pixels", boom)
    with pytest.raises(RuntimeError):
        write_scene(_scene(), tmp_path / "x.img")
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs(tmp_path):
    with pytest.raises(OrbitmlInputError, match="no such file"):
        open_scene(tmp_path / "missing.img")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x01\x02garbage" * 10)
    with pytest.raises(OrbitmlInputError, match="junk.bin"):
        open_scene(junk)
    # truncated GeoTIFF
    good = write_scene(_scene(), tmp_path / "t.tif")
    trunc = tmp_path / "trunc.tif"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(OrbitmlInputError, match="trunc.tif"):
        _ = open_scene(trunc).values
    # truncated PDS3 attached-label image
    lbl = tmp_path / "tiny.img"
    label = ("PDS_VERSION_ID = PDS3\r\nRECORD_TYPE = FIXED_LENGTH\r\nRECORD_BYTES = 64\r\nFILE_RECORDS = 13\r\n"
             "LABEL_RECORDS = 5\r\n^IMAGE = 6\r\nOBJECT = IMAGE\r\n LINES = 8\r\n LINE_SAMPLES = 64\r\n"
             " SAMPLE_TYPE = MSB_UNSIGNED_INTEGER\r\n SAMPLE_BITS = 8\r\nEND_OBJECT = IMAGE\r\nEND\r\n")
    lbl.write_bytes(label.encode().ljust(320, b" ") + bytes(range(64)) * 4)  # only 4 of 8 lines
    with pytest.raises(OrbitmlInputError, match="truncated"):
        open_scene(lbl)


def test_pds3_attached_label_complete(tmp_path):
    lbl = tmp_path / "tiny.img"
    label = ("PDS_VERSION_ID = PDS3\r\nRECORD_TYPE = FIXED_LENGTH\r\nRECORD_BYTES = 64\r\nFILE_RECORDS = 13\r\n"
             "LABEL_RECORDS = 5\r\n^IMAGE = 6\r\nINSTRUMENT_ID = MDIS\r\nOBJECT = IMAGE\r\n LINES = 8\r\n"
             " LINE_SAMPLES = 32\r\n SAMPLE_TYPE = MSB_UNSIGNED_INTEGER\r\n SAMPLE_BITS = 16\r\n"
             "END_OBJECT = IMAGE\r\nEND\r\n")
    pix = (np.arange(256) * 7).astype(">u2").reshape(8, 32)
    lbl.write_bytes(label.encode().ljust(320, b" ") + pix.tobytes())
    sc = open_scene(lbl)
    np.testing.assert_array_equal(sc.values[0], pix.astype(np.uint16))
    assert sc.attrs["instrument"] == "MDIS"


def test_fits_lazy_with_dict_chunks(tmp_path):
    from astropy.io import fits

    data = np.arange(30 * 40, dtype=np.float32).reshape(30, 40)
    fits.PrimaryHDU(data).writeto(tmp_path / "f.fits")
    lazy = open_scene(tmp_path / "f.fits", chunks={"y": 16, "x": 16})
    assert lazy.chunks is not None
    np.testing.assert_array_equal(lazy.values[0], data)


def test_make_scene_does_not_copy_data():
    data = np.zeros((2, 4, 5), np.float32)
    sc = make_scene(data, crs=MARS_EQC, nodata=-1.0)
    assert np.shares_memory(sc.data, data)


def test_products_leak_no_temporary_or_absolute_path(tmp_path):
    import rasterio

    from orbitml.io import write_scene
    from orbitml.scene import make_scene

    sc = make_scene(np.ones((2, 4, 5), np.float32), wavelength=[500.0, 600.0],
                    attrs={"instrument": "X", "source": str(tmp_path / "deep" / "input.img")})
    envi = write_scene(sc, tmp_path / "cube.img")
    hdr = (tmp_path / "cube.hdr").read_text()
    assert ".tmp" not in hdr and "description = {orbitml cube.img: instrument=X}" in hdr
    tif = write_scene(sc, tmp_path / "cube.tif")
    with rasterio.open(tif) as ds:
        tags = ds.tags()
    assert tags["ORBITML_SOURCE"] == "input.img"
    assert not any(str(tmp_path) in v for v in tags.values())
    assert envi.exists()
