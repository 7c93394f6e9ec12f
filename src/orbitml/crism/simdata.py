"""Simulated CRISM training sets and images with known truth (built on ``orbitml.simulate``).

* :func:`simulate_labelled`: ratioed labelled spectra in the layout of crism_ml's
  ``CRISM_labeled_pixels_ratioed.mat`` (``pixspec``, ``pixlabs``, ``pixims``, ``im_names``,
  ``pixcrds``, ``pixpat``).  Each image draws its own jittered version of each mineral
  (band centres, depths, continuum: the per-image variation the HBM's middle level models), then
  pixels vary around it in band depth and noise.
* :func:`simulate_bland`: unratioed bland spectra like ``CRISM_bland_unratioed.mat``: a neutral
  surface times the Mars atmosphere (CO2 bands) times a per-column detector response.
* :func:`simulate_image`: an unratioed CRISM-like ``(rows, cols, 350)`` cube with mineral patches
  on a neutral plain, the same atmosphere and column response, spikes and bad pixels, and the
  true class map.
"""

from __future__ import annotations

import numpy as np

from orbitml.crism import bands as cb
from orbitml.crism import classes as cc
from orbitml.simulate.spectra import absorption_spectrum, family_params

# simulate.spectra families -> crism_ml class codes (families with bands in 1.0-2.65 um)
FAMILY_CODES = {
    "co2_ice": 1, "h2o_ice": 2, "jarosite": 9, "fe_mg_smectite": 6, "prehnite": 8, "serpentine": 10,
    "al_smectite": 14, "kaolinite": 15, "polyhydrated_sulfate": 19, "monohydrated_sulfate": 26,
    "hydrated_silica": 27, "mg_carbonate": 30, "chlorite": 31, "low_ca_pyroxene": 33, "olivine": 34,
    "high_ca_pyroxene": 35,
}
CODE_FAMILY = {v: k for k, v in FAMILY_CODES.items()}
DEFAULT_CODES = (6, 14, 15, 19, 26, 9, 30, 27, 10, 31, 34, 33, cc.NEUTRAL)

_ATM = ((1.435, 0.012, 0.04), (1.575, 0.010, 0.04), (1.605, 0.010, 0.05), (1.96, 0.013, 0.25),
        (2.01, 0.014, 0.45), (2.06, 0.013, 0.30), (2.70, 0.060, 0.60), (2.77, 0.030, 0.40))


def atmosphere(wl_nm: np.ndarray, airmass: float | np.ndarray = 1.0) -> np.ndarray:
    """Mars-like atmospheric transmission (CO2 bands near 1.43-1.6, 1.96-2.06, 2.7 um)."""
    lam = np.asarray(wl_nm, dtype=float) / 1000.0
    t = np.ones_like(lam)
    for c, s, d in _ATM:
        t *= 1 - d * np.exp(-0.5 * ((lam - c) / s) ** 2)
    return t ** np.asarray(airmass, dtype=float)[..., None] if np.ndim(airmass) else t**airmass


def column_response(n_cols: int, wl_nm: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Per-column detector response ``(cols, bands)``: smooth gain and slope plus a fixed ripple."""
    lam = np.asarray(wl_nm, dtype=float) / 1000.0
    a = rng.normal(0, 0.02 * strength, (n_cols, 1))
    b = rng.normal(0, 0.02 * strength, (n_cols, 1))
    ripple = rng.normal(0, 0.006 * strength, (n_cols, lam.size))
    return (1 + a + b * (lam - 1.8)) * (1 + ripple)


def _mineral_shape(code: int, wl: np.ndarray, rng: np.random.Generator, jitter: float = 1.0):
    if code == cc.NEUTRAL:
        return np.ones(wl.size)
    p = family_params(CODE_FAMILY[code], rng=rng, jitter=jitter)
    return absorption_spectrum(wl, p, with_continuum=False)


def _smooth_factor(wl: np.ndarray, rng, level_sd=0.08, slope_sd=0.05) -> np.ndarray:
    lam = wl / 1000.0
    return rng.uniform(1 - 2 * level_sd, 1 + 2 * level_sd) + rng.normal(0, slope_sd) * (lam - 1.8)


def simulate_labelled(n_images: int = 12, pixels_per_class: int = 60, codes=DEFAULT_CODES,
                      classes_per_image: int = 5, noise: float = 0.004, seed: int = 0,
                      wavelengths: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Ratioed labelled spectra; every class appears in at least two images."""
    rng = np.random.default_rng(seed)
    wl = cb.nominal_wavelengths() if wavelengths is None else np.asarray(wavelengths, float)
    codes = list(codes)
    minerals = [c for c in codes if c != cc.NEUTRAL]
    # each image gets classes_per_image - 1 distinct minerals, cycling so every class appears in several images
    k = max(1, min(classes_per_image - 1, len(minerals)))
    per_img = [{minerals[(j * k + t) % len(minerals)] for t in range(k)} for j in range(n_images)]
    spec, labs, ims, crds = [], [], [], []
    for j in range(n_images):
        img_codes = sorted(per_img[j]) + ([cc.NEUTRAL] if cc.NEUTRAL in codes else [])
        img_factor = _smooth_factor(wl, rng)
        for code in img_codes:
            shape = _mineral_shape(code, wl, rng)  # the image-level version of this mineral
            n = int(rng.integers(pixels_per_class // 2, pixels_per_class * 3 // 2 + 1))
            depth = rng.uniform(0.7, 1.2, (n, 1))
            px = (1 - depth * (1 - shape[None, :])) * img_factor[None, :]
            px *= 1 + rng.normal(0, 0.01, (n, 1))
            px += rng.normal(0, noise, px.shape)
            spec.append(px)
            labs.append(np.full(n, code))
            ims.append(np.full(n, j + 1))
            crds.append(np.stack([rng.integers(1, 641, n), rng.integers(1, 481, n)], axis=1))
    pixspec = np.vstack(spec).astype(np.float32)
    pixlabs = np.concatenate(labs).astype(np.int16)
    pixims = np.concatenate(ims).astype(np.int16)
    return {"pixspec": pixspec, "pixlabs": pixlabs, "pixims": pixims,
            "im_names": np.array([f"SIM{j + 1:05d}" for j in range(n_images)]),
            "pixcrds": np.vstack(crds).astype(np.uint16), "pixpat": np.arange(pixlabs.size, dtype=np.int32) // 25,
            "wavelengths": wl}


def _neutral_surface(n: int, wl: np.ndarray, rng) -> np.ndarray:
    lam = wl / 1000.0
    level = rng.uniform(0.22, 0.32, (n, 1))
    slope = rng.normal(-0.02, 0.01, (n, 1))
    return level * (1 + slope * (lam - 1.8))


def simulate_bland(n_images: int = 8, pixels_per_image: int = 150, noise: float = 0.001, seed: int = 0,
                   wavelengths: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Unratioed bland spectra (neutral surface x atmosphere x column response)."""
    rng = np.random.default_rng(seed)
    wl = cb.nominal_wavelengths() if wavelengths is None else np.asarray(wavelengths, float)
    spec, ims, crds = [], [], []
    for j in range(n_images):
        resp = column_response(64, wl, rng)
        cols = rng.integers(0, 64, pixels_per_image)
        am = rng.uniform(0.9, 1.3)
        px = _neutral_surface(pixels_per_image, wl, rng) * atmosphere(wl, am)[None, :] * resp[cols]
        px += rng.normal(0, noise, px.shape)
        spec.append(px)
        ims.append(np.full(pixels_per_image, j + 1))
        crds.append(np.stack([cols + 1, rng.integers(1, 481, pixels_per_image)], axis=1))
    return {"pixspec": np.vstack(spec).astype(np.float32), "pixims": np.concatenate(ims).astype(np.int16),
            "im_names": np.array([f"BLAND{j + 1:05d}" for j in range(n_images)]),
            "pixcrds": np.vstack(crds).astype(np.uint16), "wavelengths": wl}


def simulate_image(rows: int = 120, cols: int = 60, codes=(6, 14, 19, 30), seed: int = 0,
                   wavelengths: np.ndarray | None = None, noise: float = 0.001, n_spikes: int = 20,
                   n_bad: int = 3) -> dict[str, np.ndarray]:
    """Unratioed CRISM-like cube ``(rows, cols, bands)`` with elliptical mineral patches.

    Returns ``cube``, ``truth`` (class code per pixel; 39 = neutral background, 0 = bad pixel),
    ``wavelengths`` and ``bad`` (pixels holding 65535 values).
    """
    rng = np.random.default_rng(seed)
    wl = cb.nominal_wavelengths() if wavelengths is None else np.asarray(wavelengths, float)
    truth = np.full((rows, cols), cc.NEUTRAL, dtype=np.int16)
    abund = np.zeros((rows, cols))
    yy, xx = np.mgrid[0:rows, 0:cols]
    shapes = {}
    for i, code in enumerate(codes):
        cy = rows * (i + 0.5) / len(codes)
        cx = rng.uniform(0.3, 0.7) * cols
        ry, rx = rows / (2.6 * len(codes)), cols * rng.uniform(0.15, 0.25)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        truth[inside] = code
        abund[inside] = rng.uniform(0.8, 1.2, inside.sum())
        shapes[code] = _mineral_shape(code, wl, rng)
    surf = _neutral_surface(rows * cols, wl, rng).reshape(rows, cols, -1)
    for code, shape in shapes.items():
        m = truth == code
        surf[m] *= 1 - abund[m][:, None] * (1 - shape[None, :])
    airmass = 1.0 + 0.1 * np.sin(np.linspace(0, np.pi, rows))
    cube = surf * atmosphere(wl, airmass)[:, None, :] * column_response(cols, wl, rng)[None, :, :]
    cube += rng.normal(0, noise, cube.shape)
    for _ in range(n_spikes):
        cube[rng.integers(rows), rng.integers(cols), rng.integers(wl.size)] *= rng.choice([0.5, 1.8])
    bad = np.zeros((rows, cols), bool)
    for _ in range(n_bad):
        r, c = rng.integers(rows), rng.integers(cols)
        cube[r, c, rng.integers(wl.size)] = 65535.0
        bad[r, c] = True
    truth[bad] = cc.UNCLASSIFIED
    return {"cube": cube.astype(np.float32), "truth": truth, "wavelengths": wl, "bad": bad}
