"""Every real file in ../shared/data opens with the right shape, dtype and CRS (or fails clearly)."""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.io import describe, open_scene
from tests.conftest import shared_file

# (relative path, bands, height, width, dtype, CRS name fragment or None)
CASES = [
    ("mars/hirise/PSP_001446_1790_BG12_0.IMG", 1, 5000, 256, "uint8", None),
    ("mars/hirise/PSP_001331_2260_IR10_1.IMG", 1, 10000, 256, "uint8", None),
    ("mars/hirise/PSP_009404_2635_RED_NLstretch_1m_o_forPDS_cropped.cub", 1, 50, 50, "uint8", "PolarStereographic"),
    ("mars/hirise/PSP_002118_1510_1m_o_forPDS_cropped.cub", 1, 50, 50, "uint8", "Equirectangular"),
    ("mars/ctx/ctxTestImage.cub", 1, 20, 20, "int16", None),
    ("mars/crism/frt00003e25_01_de156l_ddr1.lbl", 14, 15, 64, "float32", None),
    ("mars/crism/frt00003e25_01_de156l_ddr1.img", 14, 15, 64, "float32", None),
    ("mars/mola/mola_compressed_prep.cub", 1, 11, 21, "int16", "SimpleCylindrical"),
    ("crism/frt0000932c_07_if164j_mtr3_subsampled.tif", 489, 20, 20, "float32", "Mars"),
    ("hsi/envi/ang20150420t182808_corr_v1e_img_4200-4210_70-80.img", 432, 10, 10, "float32", "UTM zone 12N"),
    ("hsi/envi/ang20150420t182808_corr_v1e_img_class_4200-4210_70-80.img", 1, 10, 10, "uint16", "UTM zone 12N"),
    ("ccd/gmos_S20190808S0048_cutout.fits", 1, 150, 200, "float32", None),
    ("ccd/saao1m_a8280271_raw.fits", 1, 520, 536, "uint16", None),
]


@pytest.mark.parametrize("rel,bands,h,w,dtype,crs", CASES, ids=[c[0].split("/")[-1] for c in CASES])
def test_real_file_opens(rel, bands, h, w, dtype, crs):
    path = shared_file(rel)
    scene = open_scene(path)
    assert scene.dims == ("band", "y", "x")
    assert scene.shape == (bands, h, w)
    assert str(scene.dtype) == dtype
    info = describe(path)
    if crs is None:
        assert info["crs"] is None or "Mars" in info["crs"] or rel.endswith(".lbl")
    else:
        assert crs in info["crs"]


def test_hirise_edr_skips_line_prefix_and_suffix_bytes():
    """GDAL ignores LINE_PREFIX_BYTES; the pixels must match a by-hand read of the label's layout."""
    path = shared_file("mars/hirise/PSP_001446_1790_BG12_0.IMG")
    scene = open_scene(path)
    raw = np.fromfile(path, dtype=np.uint8)
    # label: ^IMAGE at byte 61903 (1-based), 5000 lines x (18 prefix + 256 + 16 suffix) bytes
    lines = raw[61902:61902 + 5000 * 290].reshape(5000, 290)[:, 18:18 + 256]
    np.testing.assert_array_equal(scene.values[0], lines)
    assert scene.rio.nodata == 255  # MISSING_CONSTANT
    assert scene.attrs["instrument"] == "HIRISE"
    assert scene.attrs["product_id"] == "PSP_001446_1790_BG12_0"


def test_lazy_open_matches_eager():
    path = shared_file("mars/hirise/PSP_001331_2260_IR10_1.IMG")
    lazy = open_scene(path, chunks={"y": 1024, "x": 256})
    assert lazy.chunks is not None
    np.testing.assert_array_equal(lazy[:, 4000:4100].values, open_scene(path)[:, 4000:4100].values)


def test_mtrdr_wavelengths_from_csv():
    tif = shared_file("crism/frt0000932c_07_if164j_mtr3_subsampled.tif")
    csv = shared_file("crism/frt0000932c_mtr3_wavelengths_nm.csv")
    scene = open_scene(tif, wavelengths=csv)
    wl = scene.coords["wavelength"].values
    assert wl.size == 489
    assert wl[0] == pytest.approx(436.13) and wl[-1] == pytest.approx(3896.76)
    assert scene.rio.nodata == 65535
    assert "Mars" in scene.rio.crs.to_wkt()


def test_wavelength_table_of_wrong_length_is_an_error(tmp_path):
    tif = shared_file("crism/frt0000932c_07_if164j_mtr3_subsampled.tif")
    bad = tmp_path / "wl.csv"
    bad.write_text("band,wavelength_nm\n" + "".join(f"{i},{1000 + i}\n" for i in range(1, 101)))
    with pytest.raises(OrbitmlInputError, match="100 values but the image has 489 bands"):
        open_scene(tif, wavelengths=bad)


def test_inconsistent_crism_label_fails_clearly():
    lbl = shared_file("mars/crism/T0897_MRRAL_05S113_0256_1_cropped.LBL")
    with pytest.raises(OrbitmlInputError, match="inconsistent") as err:
        open_scene(lbl)
    assert "T0897_MRRAL_05S113_0256_1_cropped" in str(err.value)


def test_envi_aviris_ng_wavelengths_and_rotation():
    scene = open_scene(shared_file("hsi/envi/ang20150420t182808_corr_v1e_img_4200-4210_70-80.img"))
    wl = scene.coords["wavelength"].values
    assert wl[0] == pytest.approx(346.2995778) and np.all(np.diff(wl) > 0)
    assert "fwhm" in scene.coords
    t = scene.rio.transform()
    assert t.b != 0 and t.d != 0  # map info rotation=75 degrees is kept
    assert scene.rio.crs.to_epsg() == 32612


def test_isis_special_pixels_become_nodata():
    scene = open_scene(shared_file("mars/mola/mola_compressed_prep.cub"))
    assert scene.rio.nodata == -32768
    vals = scene.values
    assert not np.isin(vals, [-32767, -32766, -32765, -32764]).any()


def test_fits_bzero_applied_and_hdu_choice():
    from astropy.io import fits

    path = shared_file("ccd/saao1m_a8280271_raw.fits")
    saao = open_scene(path)
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        stored = hdul[0].data.astype(np.int32)  # raw int16 on disk
    assert saao.dtype == np.uint16
    np.testing.assert_array_equal(saao.values[0].astype(np.int32), stored + 32768)  # BZERO applied
    gmos = open_scene(shared_file("ccd/gmos_S20190808S0048_cutout.fits"), hdu="VAR")
    assert gmos.attrs["extname"] == "VAR"
    with pytest.raises(OrbitmlInputError, match="not found"):
        open_scene(shared_file("ccd/gmos_S20190808S0048_cutout.fits"), hdu="NOPE")


def test_spectral_library_is_not_an_image():
    with pytest.raises(OrbitmlInputError, match="spectral library"):
        open_scene(shared_file("hsi/envi/s07_AV95_envi.sli"))
