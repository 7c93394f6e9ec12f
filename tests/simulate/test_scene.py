"""Simulated scenes: simplex abundances, linear mixing, SNR, nodata, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from orbitml.errors import OrbitmlInputError
from orbitml.scene import pixels, valid_mask
from orbitml.simulate import crism_like_wavelengths, library_from_families, simulate_scene


def test_abundances_on_simplex_and_linear_mixing_with_requested_snr():
    sim = simulate_scene(shape=(48, 40), n_endmembers=4, snr_db=30.0, seed=3)
    A = sim.abundances
    assert A.shape == (4, 48, 40) and np.all(A >= 0)
    np.testing.assert_allclose(A.sum(0), 1.0, atol=1e-12)
    Y = sim.scene.values.astype(np.float64)
    clean = np.einsum("pb,pyx->byx", sim.endmembers, A)
    noise = Y - clean
    snr = 10 * np.log10(np.mean(clean**2) / np.mean(noise**2))
    assert snr == pytest.approx(30.0, abs=0.05)
    assert np.std(noise) == pytest.approx(sim.noise_std, rel=0.01)
    assert abs(np.mean(noise)) < 3 * sim.noise_std / np.sqrt(noise.size) + 1e-6  # zero-mean, white
    assert sim.scene.dims == ("band", "y", "x") and sim.scene.dtype == np.float32
    wl = crism_like_wavelengths()
    assert wl.size == 245 and wl[0] == 1000.0
    np.testing.assert_array_equal(sim.scene.wavelength.values, wl)
    np.testing.assert_array_equal(sim.labels, np.argmax(A, axis=0))


def test_same_seed_same_scene_other_seed_differs():
    a = simulate_scene(shape=(16, 16), seed=5, nodata_fraction=0.1)
    b = simulate_scene(shape=(16, 16), seed=5, nodata_fraction=0.1)
    np.testing.assert_array_equal(a.scene.values, b.scene.values)
    np.testing.assert_array_equal(a.abundances, b.abundances)
    c = simulate_scene(shape=(16, 16), seed=6, nodata_fraction=0.1)
    assert not np.array_equal(np.nan_to_num(a.scene.values), np.nan_to_num(c.scene.values))
    # independent streams: the noise level does not change the abundance maps
    d = simulate_scene(shape=(16, 16), seed=5, nodata_fraction=0.1, snr_db=20.0)
    np.testing.assert_array_equal(a.abundances, d.abundances)


def test_smoothness_makes_fields_spatially_correlated():
    rough = simulate_scene(shape=(64, 64), smoothness=0.0, seed=1, snr_db=None).abundances[0]
    smooth = simulate_scene(shape=(64, 64), smoothness=6.0, seed=1, snr_db=None).abundances[0]

    def lag1(a):
        return np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1]

    assert lag1(smooth) > 0.9 and abs(lag1(rough)) < 0.1


def test_nodata_blobs_crs_transform_and_pure_pixels():
    t = Affine(18.0, 0, 1000.0, 0, -18.0, 5000.0)
    crs = "+proj=eqc +lat_ts=0 +lon_0=0 +a=3396190 +b=3396190 +units=m +no_defs"
    sim = simulate_scene(shape=(40, 50), nodata_fraction=0.2, pure_pixels=True, crs=crs, transform=t, seed=2)
    assert sim.valid.sum() == 40 * 50 - 400
    np.testing.assert_array_equal(valid_mask(sim.scene).values, sim.valid)
    assert np.isnan(sim.scene.values[:, ~sim.valid]).all() and np.isfinite(sim.scene.values[:, sim.valid]).all()
    assert np.all(sim.labels[~sim.valid] == -1)
    # blobs, not salt and pepper: most nodata pixels have a nodata 4-neighbour
    nd = ~sim.valid
    nb = np.zeros_like(nd)
    nb[1:] |= nd[:-1]
    nb[:-1] |= nd[1:]
    nb[:, 1:] |= nd[:, :-1]
    nb[:, :-1] |= nd[:, 1:]
    assert (nd & nb).sum() / nd.sum() > 0.9
    assert sim.scene.rio.transform() == t and sim.scene.rio.crs is not None
    flat = sim.abundances.reshape(sim.abundances.shape[0], -1)
    for j in range(flat.shape[0]):  # one pure, valid pixel per endmember
        pure = np.flatnonzero(flat[j] == 1.0)
        assert pure.size >= 1 and sim.valid.ravel()[pure].any()
    X, _ = pixels(sim.scene)
    assert X.shape == (sim.valid.sum(), 245)


def test_endmembers_from_library_names_and_array():
    wl = np.arange(1000.0, 2500.0, 10.0)
    lib = library_from_families(np.arange(900.0, 2600.0, 2.0), ["kaolinite", "olivine", "h2o_ice"])
    sim = simulate_scene(lib, wl, shape=(8, 8), snr_db=None, seed=0)
    assert sim.names == ["kaolinite", "olivine", "h2o_ice"] and sim.endmembers.shape == (3, wl.size)
    np.testing.assert_allclose(sim.scene.values, np.einsum("pb,pyx->byx", sim.endmembers, sim.abundances), rtol=1e-6)
    by_name = simulate_scene(["serpentine", "chlorite"], shape=(8, 8), seed=0)
    assert by_name.names == ["serpentine", "chlorite"]
    arr = simulate_scene(np.ones((2, 5)) * [[0.2], [0.6]], np.arange(5.0) * 100 + 1000, shape=(4, 4), seed=0)
    assert arr.scene.shape == (5, 4, 4)
    with pytest.raises(OrbitmlInputError, match="n_endmembers"):
        simulate_scene(n_endmembers=99)
    with pytest.raises(OrbitmlInputError, match="nodata_fraction"):
        simulate_scene(nodata_fraction=1.0)
