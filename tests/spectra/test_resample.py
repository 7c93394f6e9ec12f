"""Gaussian-response resampling against analytic and numerical references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.spectra import SpectralLibrary, resample_to_bands, response_matrix

SIG = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def absorption(x, centre, width, depth):
    return 1.0 - depth * np.exp(-0.5 * ((x - centre) / width) ** 2)


def test_gaussian_absorption_matches_analytic_convolution():
    src = np.arange(900.0, 2700.0, 0.1)  # linear-interpolation error ~ h^2 d / (8 w^2) ~ 1e-6
    c, w, d = 1900.0, 20.0, 0.4
    spec = absorption(src, c, w, d)
    centres = np.arange(1800.0, 2000.0, 7.0)
    fwhm = np.linspace(5.0, 30.0, centres.size)
    out = resample_to_bands(spec, src, centres, fwhm)
    s = fwhm * SIG
    # Gaussian (x) Gaussian: widths add in quadrature, area is conserved
    expected = 1.0 - d * w / np.sqrt(w**2 + s**2) * np.exp(-0.5 * (centres - c) ** 2 / (w**2 + s**2))
    np.testing.assert_allclose(out, expected, atol=2e-6)


def test_matches_fine_grid_numerical_integration_on_coarse_irregular_source():
    rng = np.random.default_rng(3)
    src = np.sort(rng.uniform(1000.0, 2500.0, 150))  # irregular, ~10 nm spacing
    vals = 0.3 + 0.1 * np.sin(src / 70.0) + rng.normal(0, 0.01, src.size)
    centres, fwhm = np.array([1100.0, 1500.0, 2000.0, 2400.0]), np.array([3.0, 12.0, 40.0, 8.0])
    out = resample_to_bands(vals, src, centres, fwhm)
    fine = np.linspace(src[0], src[-1], 400_001)
    f = np.interp(fine, src, vals)  # the piecewise-linear source curve
    for k, (c, fw) in enumerate(zip(centres, fwhm, strict=True)):
        g = np.exp(-0.5 * ((fine - c) / (fw * SIG)) ** 2)
        ref = np.trapezoid(g * f, fine) / np.trapezoid(g, fine)
        assert out[k] == pytest.approx(ref, abs=1e-7)


def test_flat_spectrum_stays_flat_and_rows_sum_to_in_range_fraction():
    src = np.linspace(400.0, 2500.0, 300)
    centres = np.array([400.0, 1000.0, 2500.0])
    W = response_matrix(src, centres, 10.0)
    np.testing.assert_allclose(W.sum(1), [0.5, 1.0, 0.5], atol=1e-9)  # edge bands: half inside
    out = resample_to_bands(np.full((3, src.size), 0.42), src, centres, 10.0)
    np.testing.assert_allclose(out, 0.42, rtol=1e-12)


def test_nan_source_values_are_excluded_and_renormalised():
    src = np.arange(1000.0, 2000.0, 1.0)
    spec = np.full(src.size, 0.5)
    spec[(src > 1490) & (src < 1510)] = np.nan  # a gap inside the 1500 nm band
    spec[src > 1700] = np.nan  # no support at all beyond 1700 nm
    out = resample_to_bands(spec, src, [1300.0, 1500.0, 1800.0], [10.0, 60.0, 10.0])
    assert out[0] == pytest.approx(0.5) and out[1] == pytest.approx(0.5)  # renormalised over valid samples
    assert np.isnan(out[2])
    # a band whose response mostly falls in the gap is NaN under the default min_support
    narrow = resample_to_bands(spec, src, [1500.0], [8.0])
    assert np.isnan(narrow[0])
    assert resample_to_bands(spec, src, [1500.0], [8.0], min_support=0.0)[0] == pytest.approx(0.5)


def test_outside_source_range_is_nan_with_warning():
    src = np.linspace(1000.0, 2000.0, 101)
    with pytest.warns(RuntimeWarning, match="outside the source range"):
        out = resample_to_bands(np.ones(src.size), src, [900.0, 1500.0, 2100.0], 10.0)
    assert np.isnan(out[0]) and np.isnan(out[2]) and out[1] == pytest.approx(1.0)


def test_library_resample_and_batch_shapes():
    src = np.linspace(1000.0, 2500.0, 301)
    X = np.random.default_rng(0).uniform(0.1, 0.5, (2, 3, src.size)).astype(np.float32)
    centres = np.arange(1100.0, 2400.0, 50.0)
    out = resample_to_bands(X, src, centres, 20.0)
    assert out.shape == (2, 3, centres.size) and out.dtype == np.float32
    lib = SpectralLibrary(X[0], src, ["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = lib.resample(centres, 20.0)
    assert r.names == ["a", "b", "c"] and np.all(r.fwhm == 20.0)
    np.testing.assert_array_equal(r.spectra, out[0])
    # descending source order gives the same answer
    rev = resample_to_bands(X[0][:, ::-1], src[::-1], centres, 20.0)
    np.testing.assert_allclose(rev, out[0], rtol=1e-6)


def test_bad_arguments():
    src = np.linspace(1000.0, 2000.0, 11)
    with pytest.raises(OrbitmlInputError, match="bands"):
        resample_to_bands(np.ones(5), src, [1500.0], 10.0)
    with pytest.raises(OrbitmlInputError, match="FWHM"):
        resample_to_bands(np.ones(11), src, [1500.0], -1.0)
    with pytest.raises(OrbitmlInputError, match="source wavelengths"):
        resample_to_bands(np.ones(11), None, [1500.0], 10.0)
