"""The engine on real instrument files, read in place from ../shared/data."""

import numpy as np

from orbitml.io import open_scene
from orbitml.scene import valid_mask
from orbitml.tiling import TileChunker, predict

from ..conftest import shared_file


def identity(b):
    return b


def test_hirise_edr_identity_and_chunks():
    path = shared_file("mars/hirise/PSP_001446_1790_BG12_0.IMG")
    ref = open_scene(path)
    out = predict(path, identity, tile=128, stride=64, progress=False)
    assert out.shape == ref.shape == (1, 5000, 256)
    ok = valid_mask(ref).values
    np.testing.assert_array_equal(out.values[0][ok], ref.values[0][ok].astype(np.float32))
    assert np.isnan(out.values[0][~ok]).all()
    idx = TileChunker(256, overlap=32).tiles(path)  # 5000 rows: 224 px steps do not divide evenly
    rows = sorted({t.row for t in idx.tiles})
    assert len(rows) == 23 and rows[-1] + 256 == 5000  # the bottom remainder is covered, not dropped


def test_isis_ortho_nodata_and_mars_crs(tmp_path):
    path = shared_file("mars/hirise/PSP_009404_2635_RED_NLstretch_1m_o_forPDS_cropped.cub")
    ref = open_scene(path)
    out = predict(path, identity, tile=16, stride=8, out=tmp_path / "o.tif", progress=False)
    import rasterio

    with rasterio.open(out) as ds:
        assert ref.rio.crs is not None and ds.crs == ref.rio.crs and ds.transform == ref.rio.transform()
        got = ds.read(1)
    ok = valid_mask(ref).values
    np.testing.assert_array_equal(got[ok], ref.values[0][ok].astype(np.float32))
    assert np.isnan(got[~ok]).all()


def test_fits_ccd_frame_through_open_scene():
    path = shared_file("ccd/gmos_S20190808S0048_cutout.fits")
    ref = open_scene(path)
    out = predict(path, identity, tile=64, stride=32, out_dtype="float32", progress=False)
    ok = valid_mask(ref).values
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out.values[:, ok], ref.values[:, ok].astype(np.float32))
