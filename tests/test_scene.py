"""The scene data model: construction, masks, pixel round trips, band selection."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from orbitml.errors import OrbitmlInputError
from orbitml.scene import from_pixels, make_scene, pixels, select_bands, to_float, valid_mask


def test_make_scene_coords_follow_transform():
    t = Affine(10.0, 0, 1000.0, 0, -5.0, 2000.0)
    sc = make_scene(np.zeros((2, 3, 4), np.float32), wavelength=[1000, 2000], transform=t, crs="EPSG:32612")
    assert sc.dims == ("band", "y", "x")
    np.testing.assert_allclose(sc.x.values, 1000 + 10 * (np.arange(4) + 0.5))
    np.testing.assert_allclose(sc.y.values, 2000 - 5 * (np.arange(3) + 0.5))
    assert sc.rio.transform() == t
    assert sc.rio.crs.to_epsg() == 32612
    with pytest.raises(OrbitmlInputError, match="3 wavelengths given for 2 bands"):
        make_scene(np.zeros((2, 3, 4)), wavelength=[1, 2, 3])


def test_valid_mask_nodata_and_nan():
    data = np.ones((3, 2, 2), np.float32)
    data[0, 0, 0] = -1
    data[2, 1, 1] = np.nan
    sc = make_scene(data, nodata=-1)
    np.testing.assert_array_equal(valid_mask(sc).values, [[False, True], [True, False]])
    np.testing.assert_array_equal(valid_mask(sc, how="any").values, [[True, True], [True, True]])
    f = to_float(sc)
    assert np.isnan(f.values[0, 0, 0]) and np.isnan(f.rio.nodata)


def test_pixels_round_trip_and_lazy_mask():
    rng = np.random.default_rng(0)
    data = rng.random((4, 5, 6)).astype(np.float32)
    data[:, 1, 2] = np.nan
    sc = make_scene(data, wavelength=[1, 2, 3, 4], crs="EPSG:32612", transform=Affine(2, 0, 0, 0, -2, 0))
    X, idx = pixels(sc)
    assert X.shape == (29, 4) and 1 * 6 + 2 not in idx
    np.testing.assert_array_equal(X, data.reshape(4, -1)[:, idx].T)
    back = from_pixels(X, idx, sc, wavelength=[1, 2, 3, 4])
    np.testing.assert_array_equal(np.nan_to_num(back.values, nan=-7), np.nan_to_num(data, nan=-7))
    assert back.rio.crs == sc.rio.crs
    lazy = sc.chunk({"y": 2, "x": 3})
    np.testing.assert_array_equal(valid_mask(lazy).values, valid_mask(sc).values)


def test_select_bands():
    sc = make_scene(np.zeros((5, 2, 2)), wavelength=[1000, 1500, 2000, 2500, 3000])
    sub = select_bands(sc, [(1400, 2100), (2900, 3100)])
    np.testing.assert_array_equal(sub.wavelength.values, [1500, 2000, 3000])
    with pytest.raises(OrbitmlInputError):
        select_bands(sc, [(100, 200)])


def test_empty_bands_numpy_and_dask():
    from orbitml.scene import empty_bands

    data = np.ones((4, 3, 3), np.float32)
    data[1] = np.nan
    data[3] = -5
    data[2, 0, 0] = -5  # one nodata pixel only: not empty
    sc = make_scene(data, nodata=-5)
    np.testing.assert_array_equal(empty_bands(sc), [1, 3])
    np.testing.assert_array_equal(empty_bands(sc.chunk({"y": 2})), [1, 3])


def test_bin_bands_means_and_axes():
    import numpy as np

    from orbitml.scene import bin_bands, make_scene

    data = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    data[4, 0, 0] = -1
    sc = make_scene(data, wavelength=[400.0, 410.0, 420.0, 430.0, 440.0], nodata=-1)
    sc = sc.assign_coords(fwhm=("band", np.full(5, 10.0)))
    b = bin_bands(sc, 2)
    assert b.sizes["band"] == 3
    np.testing.assert_allclose(b.values[0], (data[0] + data[1]) / 2)
    np.testing.assert_allclose(b.values[1], (data[2] + data[3]) / 2)
    assert np.isnan(b.values[2, 0, 0]) and b.values[2, 1, 1] == data[4, 1, 1]
    np.testing.assert_allclose(b.coords["wavelength"].values, [405.0, 425.0, 440.0])
    np.testing.assert_allclose(b.coords["fwhm"].values, [20.0, 20.0, 10.0])
