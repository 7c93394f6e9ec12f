import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.simulate.hirise import chunk_label, simulate_hirise, write_hirise


def test_same_seed_same_tile_and_truth_consistent():
    a, ta = simulate_hirise((160, 160), n_ice=3, n_hot=5, n_lines=2, seed=4)
    b, tb = simulate_hirise((160, 160), n_ice=3, n_hot=5, n_lines=2, seed=4)
    c, _ = simulate_hirise((160, 160), n_ice=3, n_hot=5, n_lines=2, seed=5)
    assert np.array_equal(a, b) and np.array_equal(ta.patch_id, tb.patch_id)
    assert not np.array_equal(a, c)
    assert a.dtype == np.uint8
    # black no-data exactly where the truth says, and nowhere else
    assert np.array_equal(a == 0, ta.nodata)
    assert ta.hot.sum() == 5 and ta.lines.any() and not (ta.hot & ta.lines).any()
    assert len(ta.patches) == 3 and set(np.unique(ta.patch_id)) == {0, 1, 2, 3}


def test_ice_is_bright_on_the_poleward_side_and_casts_no_shadow():
    img, tr = simulate_hirise((256, 256), n_ice=6, n_dust=0, seed=1, noise_dn=0.0)
    clean, _ = simulate_hirise((256, 256), n_ice=0, n_dust=0, seed=1, noise_dn=0.0)
    ice = tr.ice
    assert ice.any()
    # patches are much brighter than the terrain they replace, and darker-than-average ground lies under them
    assert img[ice].mean() > clean[~tr.nodata].mean() + 60
    assert clean[ice].mean() < clean[~tr.nodata].mean()
    # no shadow of their own: the terrain is drawn before the patches, so the two tiles share it, and adding
    # patches never darkens a pixel
    assert (img.astype(int) - clean.astype(int) >= -1).all()


def test_chunk_labels_whole_cut_and_none():
    _, tr = simulate_hirise((128, 128), n_ice=1, n_dust=0, margin=(0, 0), seed=3)
    p = tr.patches[0]
    r, c = p["row"], p["col"]
    assert chunk_label(tr, max(r - 30, 0), max(c - 30, 0), 60, 60) == 1
    rows, cols = np.nonzero(tr.patch_id == 1)
    # a window cutting through the patch's middle row: ambiguous
    mid = int(np.median(rows))
    assert chunk_label(tr, mid, 0, 128 - mid, 128) is None
    # a window missing the patch entirely
    far_r = 0 if rows.min() > 40 else 88
    assert chunk_label(tr, far_r, 0, 40, 128) == 0


def test_write_geotiff_and_isis_cube_in_a_mars_crs(tmp_path):
    from orbitml.io import describe

    img, _ = simulate_hirise((64, 96), seed=0)
    for name in ("t.tif", "t.cub"):
        p = write_hirise(tmp_path / name, img, origin=(100.0, -2000.0), pixel_m=0.25)
        d = describe(p)
        assert (d["height"], d["width"]) == (64, 96)
        assert "Mars" in d["crs_wkt"] and "Equirectangular" in d["crs_wkt"]
        assert d["transform"] == pytest.approx([0.25, 0, 100.0, 0, -0.25, -2000.0])
        import rasterio

        with rasterio.open(p) as ds:
            assert np.array_equal(ds.read(1), img)


def test_too_small_tile_is_refused():
    with pytest.raises(OrbitmlInputError, match="at least 32"):
        simulate_hirise((16, 64))
