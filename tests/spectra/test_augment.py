"""Library augmentation: each generator's effect, composition, seeding, label safety, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.spectra.augment import (
    BandNoise,
    Compose,
    Mixture,
    Offset,
    Scale,
    Tilt,
    augment_library,
    default_augmenter,
)

WL = np.linspace(1000, 2600, 80)


@pytest.fixture(scope="module")
def lib():
    rng = np.random.default_rng(0)
    base = 0.3 + 0.2 * np.sin(WL[None, :] / 300.0 + np.arange(4)[:, None])
    return base + 0.01 * rng.random((4, WL.size))


def test_offset_scale_tilt_are_what_they_say(lib):
    rng = np.random.default_rng(1)
    X = np.repeat(lib[:1], 500, axis=0)
    d = Offset(0.05)(X, rng) - X
    assert np.allclose(d, d[:, :1]) and np.abs(d).max() <= 0.05 and d.std() > 0.02
    r = Scale(0.8, 1.2)(X, rng) / X
    assert np.allclose(r, r[:, :1]) and 0.8 <= r.min() and r.max() <= 1.2
    t = Tilt(0.1)(X, rng, WL) / X
    ramp = t - 1
    # a straight line through zero at the centre of the range: check against an independent fit
    k = np.polyfit(WL, ramp[0], 1)
    assert np.allclose(np.polyval(k, WL), ramp[0]) and abs(np.polyval(k, (WL[0] + WL[-1]) / 2)) < 1e-12
    assert np.abs(ramp).max() <= 0.1 + 1e-12


def test_mixture_keeps_class_fraction_and_lies_in_hull(lib):
    rng = np.random.default_rng(2)
    X = np.repeat(lib[:1], 2000, axis=0)
    M = Mixture(others=lib[1:], min_fraction=0.75, n_others=2)(X, rng)
    # recover the fractions with exact least squares on the 4 library spectra
    F = np.linalg.lstsq(lib.T, M.T, rcond=None)[0].T
    assert F[:, 0].min() >= 0.75 - 1e-9
    assert np.allclose(F.sum(axis=1), 1.0) and F.min() > -1e-9
    assert F[:, 0].max() > 0.99


def test_band_noise_follows_snr_model(lib):
    rng = np.random.default_rng(3)
    X = np.repeat(lib[:1], 20000, axis=0)
    snr = np.linspace(50, 500, WL.size)
    N = BandNoise(snr=lambda w: np.interp(w, WL, snr))(X, rng, WL) - X
    np.testing.assert_allclose(N.std(axis=0), lib[0] / snr, rtol=0.04)
    N2 = BandNoise(snr=100.0, reference=0.5)(X, rng) - X
    np.testing.assert_allclose(N2.std(axis=0), 0.005, rtol=0.04)


def test_augment_library_shapes_labels_seeds(lib):
    X, y = augment_library(lib, 10_000, labels=["a", "b", "c", "d"], wavelength=WL, random_state=5)
    assert X.shape == (40_000, WL.size) and X.dtype == np.float32
    assert list(np.unique(y)) == ["a", "b", "c", "d"] and (y == "c").sum() == 10_000
    X2, _ = augment_library(lib, 10_000, wavelength=WL, random_state=5)
    np.testing.assert_array_equal(X, X2)
    X3, _ = augment_library(lib, 10_000, wavelength=WL, random_state=6)
    assert not np.array_equal(X, X3)
    # the nearest library spectrum (by angle) of most augmented spectra is their own class
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    L = lib / np.linalg.norm(lib, axis=1, keepdims=True)
    assert (np.argmax(Xn @ L.T, axis=1) == np.repeat(np.arange(4), 10_000)).mean() > 0.9


def test_compose_order_and_one_class_library(lib):
    aug = Compose([Scale(2.0, 2.0), Offset((1.0, 1.0))])
    X, _ = augment_library(lib[:1], 3, augmenter=aug, random_state=0, dtype=np.float64)
    np.testing.assert_allclose(X, np.repeat(2 * lib[:1] + 1, 3, axis=0))  # scale first, then offset
    X, _ = augment_library(lib[:1], 5, augmenter=default_augmenter(), wavelength=WL, random_state=0)
    assert np.isfinite(X).all()  # mixtures are skipped when there is nothing to mix with


def test_include_original_and_background(lib):
    bg = np.full((2, WL.size), 0.1)
    X, _ = augment_library(lib, 50, augmenter=Compose([Mixture(min_fraction=0.9)]), background=bg,
                           include_original=True, random_state=0, dtype=np.float64)
    np.testing.assert_array_equal(X[0], lib[0])
    F = (X[1:50] - 0.1) / (lib[0] - 0.1)  # mixtures of class 0 with a flat 0.1 background
    assert np.allclose(F, F[:, :1]) and F.min() >= 0.9 - 1e-9


@pytest.mark.parametrize("kwargs, msg", [
    ({"n_per_class": 0}, "n_per_class"),
    ({"n_per_class": 5, "labels": ["a"]}, "labels"),
    ({"n_per_class": 5, "wavelength": WL[:3]}, "wavelengths"),
])
def test_bad_arguments(lib, kwargs, msg):
    with pytest.raises(OrbitmlInputError, match=msg):
        augment_library(lib, **kwargs)


def test_nan_library_and_bad_generators(lib):
    bad = lib.copy()
    bad[2, 5] = np.nan
    with pytest.raises(OrbitmlInputError, match="NaN"):
        augment_library(bad, 5)
    rng = np.random.default_rng(0)
    with pytest.raises(OrbitmlInputError):
        Scale(-1, 1)(lib, rng)
    with pytest.raises(OrbitmlInputError):
        BandNoise(snr=np.ones(3))(lib, rng)
    with pytest.raises(OrbitmlInputError):
        BandNoise(snr=0.0)(lib, rng)
