"""Simulated mineral-mapping scenes with spectral variability, and the libraries a user would hold.

``simulate_minmap`` builds, for ``K`` mineral families of :mod:`orbitml.simulate.spectra`:

* **libraries**: one endmember bundle per class, ``n_library`` jittered variants of the family
  sampled every ``library_step_nm`` nm (like a laboratory library, finer than the sensor);
* **scene** on a PRISMA-like grid (239 bands, 400-2500 nm, Gaussian bands with FWHM), made from
  *other* variants of the same families (the library never holds the scene's exact spectra):
  every pixel draws, for each class, one of ``n_scene_variants`` bundle members, scaled by a
  spatially smooth illumination field (``illumination`` = relative range) and by a per-pixel
  albedo factor; the pixel is the abundance-weighted sum (linear mixing);
* **abundances**: spatially smooth fields on the simplex (:func:`smooth_simplex`) with a low
  temperature, so most pixels are dominated by one class and class boundaries are mixed;
* **noise**: white Gaussian noise at ``snr_db`` (30 dB by default; signal power over noise power).

Truth: ``labels`` (1..K, the class of largest abundance) and ``abundances`` (K, H, W).
Independent random streams drive libraries, scene spectra, abundances, illumination and noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter

from orbitml.errors import OrbitmlInputError
from orbitml.scene import make_scene
from orbitml.simulate.scene import smooth_simplex
from orbitml.simulate.spectra import FAMILIES, absorption_spectrum, family_params
from orbitml.spectra.library import SpectralLibrary
from orbitml.spectra.resample import resample_to_bands

__all__ = ["DEFAULT_CLASSES", "prisma_like_bands", "MinmapSimulation", "simulate_minmap"]

DEFAULT_CLASSES = ("kaolinite", "al_smectite", "fe_mg_smectite", "jarosite", "mg_carbonate", "hematite")


def prisma_like_bands(n: int = 239, lo: float = 402.0, hi: float = 2497.0) -> tuple[np.ndarray, np.ndarray]:
    """Band centres and FWHM (nm) of an imaging spectrometer like PRISMA (239 bands, ~9 nm apart)."""
    wl = np.linspace(lo, hi, int(n))
    step = (hi - lo) / max(int(n) - 1, 1)
    return wl, np.full(wl.size, 1.2 * step)


@dataclass(eq=False)
class MinmapSimulation:
    scene: xr.DataArray  # (band, y, x) float32, wavelength + fwhm coordinates
    labels: np.ndarray  # (y, x) uint8, 1..K
    abundances: np.ndarray  # (K, y, x) float32
    classes: list[str]
    libraries: dict[str, SpectralLibrary]  # per-class bundles on a fine grid
    metadata: dict[str, Any] = field(default_factory=dict)


def _variants(family: str, wl: np.ndarray, n: int, rng: np.random.Generator, jitter: float) -> np.ndarray:
    return np.array([absorption_spectrum(wl, family_params(family, rng=rng, jitter=jitter)) for _ in range(n)])


def simulate_minmap(classes: Any = None, *, shape: tuple[int, int] = (64, 64), n_bands: int = 239,
                    snr_db: float | None = 30.0, n_library: int = 8, n_scene_variants: int = 8,
                    jitter: float = 1.0, illumination: float = 0.3, albedo: float = 0.1,
                    smoothness: float = 5.0, temperature: float = 0.25, library_step_nm: float = 2.0,
                    seed: int = 0, crs: Any = "EPSG:32633", pixel_size: float = 30.0) -> MinmapSimulation:
    """Simulate a scene and per-class libraries (see the module docstring)."""
    names = list(DEFAULT_CLASSES[:4] if classes is None else classes)
    for c in names:
        if c not in FAMILIES:
            raise OrbitmlInputError(f"unknown mineral family {c!r}; known: {', '.join(FAMILIES)}")
    if len(names) < 2 or len(set(names)) != len(names):
        raise OrbitmlInputError("need at least two distinct classes")
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise OrbitmlInputError(f"shape must be positive, got {shape}")
    r_lib, r_spec, r_ab, r_ill, r_noise = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))
    wl, fw = prisma_like_bands(n_bands)
    fine = np.arange(350.0, 2550.0 + 1e-9, float(library_step_nm))
    libraries = {}
    for c in names:
        S = _variants(c, fine, int(n_library), r_lib, jitter)
        libraries[c] = SpectralLibrary(S, fine, [f"{c} variant {i + 1}" for i in range(len(S))], None,
                                       {"format": "simulated", "family": c})
    K = len(names)
    A = smooth_simplex(K, (h, w), smoothness, temperature, r_ab)  # (K, h, w)
    bundles = np.stack([resample_to_bands(_variants(c, fine, int(n_scene_variants), r_spec, jitter), fine, wl, fw)
                        for c in names])  # (K, V, B)
    pick = r_spec.integers(0, bundles.shape[1], size=(K, h, w))
    ill = gaussian_filter(r_ill.standard_normal((h, w)), sigma=max(2.0, smoothness), mode="reflect")
    ill = (ill - ill.min()) / max(float(np.ptp(ill)), 1e-12)
    ill = 1.0 - illumination / 2 + illumination * ill  # within [1 - i/2, 1 + i/2]
    alb = r_ill.uniform(1.0 - albedo, 1.0 + albedo, size=(K, h, w))
    clean = np.zeros((wl.size, h, w))
    for k in range(K):
        spec = bundles[k][pick[k]]  # (h, w, B)
        clean += np.moveaxis(spec, -1, 0) * (A[k] * alb[k])[None]
    clean *= ill[None]
    if snr_db is None:
        data = clean
    else:
        power = float(np.mean(clean ** 2))
        sd = np.sqrt(power / 10 ** (float(snr_db) / 10))
        data = clean + sd * r_noise.standard_normal(clean.shape)
    transform = (500000.0, pixel_size, 0.0, 4000000.0 + h * pixel_size, 0.0, -pixel_size)
    scene = make_scene(data.astype(np.float32), wavelength=wl, fwhm=fw, crs=crs, transform=transform,
                       nodata=np.nan, attrs={"instrument": "simulated PRISMA-like", "units": "reflectance",
                                             "product_id": f"minmap_sim_seed{seed}"})
    labels = (np.argmax(A, axis=0) + 1).astype(np.uint8)
    meta = {"seed": seed, "snr_db": snr_db, "illumination": illumination, "albedo": albedo,
            "n_library": n_library, "n_scene_variants": n_scene_variants, "jitter": jitter,
            "smoothness": smoothness, "temperature": temperature}
    return MinmapSimulation(scene, labels, A.astype(np.float32), names, libraries, meta)
