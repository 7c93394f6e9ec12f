"""Synthetic hyperspectral scenes with known ground truth (linear mixing model).

``simulate_scene`` draws spatially smooth abundance fields on the simplex, mixes endmember spectra
linearly, adds white Gaussian noise at a chosen SNR and cuts nodata blobs out of the image:

* abundances: one Gaussian-filtered white-noise field per endmember (``smoothness`` = filter sigma
  in pixels), each standardised to zero mean and unit variance, pushed through a softmax with
  ``temperature`` (smaller = purer pixels).  Every pixel's abundances are >= 0 and sum to 1.
* clean signal ``Y[b, y, x] = sum_p E[p, b] * A[p, y, x]``.
* noise: i.i.d. Gaussian with variance ``P_signal / 10**(snr_db / 10)`` where ``P_signal`` is the
  mean of ``Y**2`` over the valid pixels and all bands, i.e. SNR in dB = 10 log10(signal power /
  noise power), the convention of the unmixing literature (Nascimento & Bioucas-Dias 2005, VCA).
* nodata: the ``round(nodata_fraction * H * W)`` pixels with the highest values of a smooth random
  field (so they form blobs) are NaN in every band; ``valid`` is False there.  The ground truth
  (abundances, labels) is still defined there; use ``valid`` to ignore those pixels.

Independent random streams (spawned from ``seed``) drive endmember choice, abundances, nodata and
noise, so changing e.g. ``snr_db`` leaves the abundance maps unchanged.  Same seed, same scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter

from orbitml.errors import OrbitmlInputError
from orbitml.scene import make_scene
from orbitml.simulate.spectra import families_in_range, library_from_families
from orbitml.spectra.library import SpectralLibrary

__all__ = [
    "CRISM_LIKE_STEP_NM",
    "crism_like_wavelengths",
    "SimulatedScene",
    "simulate_scene",
    "smooth_simplex",
]

CRISM_LIKE_STEP_NM = 6.55  # CRISM's spectral sampling


def crism_like_wavelengths(lo_nm: float = 1000.0, hi_nm: float = 2600.0, step_nm: float = CRISM_LIKE_STEP_NM):
    """Band centres from ``lo_nm`` to at most ``hi_nm`` every ``step_nm`` (default: 245, 1000-2598 nm)."""
    n = int(np.floor((hi_nm - lo_nm) / step_nm + 1e-9)) + 1
    return np.round(lo_nm + step_nm * np.arange(n), 6)


@dataclass(eq=False)
class SimulatedScene:
    """A simulated scene and its ground truth."""

    scene: xr.DataArray  # (band, y, x) float32, NaN at nodata, wavelength coordinate (nm)
    abundances: np.ndarray  # (p, y, x) float64 on the simplex
    endmembers: np.ndarray  # (p, bands) float64
    names: list[str]
    valid: np.ndarray  # (y, x) bool
    labels: np.ndarray  # (y, x) int16: argmax abundance, -1 at nodata
    wavelength: np.ndarray | None
    noise_std: float
    snr_db: float | None
    metadata: dict[str, Any] = field(default_factory=dict)

    def clean(self) -> np.ndarray:
        """The noise-free mixture ``E^T A`` as ``(bands, y, x)`` float64 (NaN at nodata)."""
        y = np.einsum("pb,pyx->byx", self.endmembers, self.abundances)
        y[:, ~self.valid] = np.nan
        return y


def smooth_simplex(
    n: int, shape: tuple[int, int], smoothness: float, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """``(n, H, W)`` spatially smooth fields, >= 0 and summing to 1 at every pixel."""
    fields = rng.standard_normal((n, *shape))
    if smoothness > 0:
        for k in range(n):
            fields[k] = gaussian_filter(fields[k], sigma=smoothness, mode="reflect")
    fields -= fields.mean(axis=(1, 2), keepdims=True)
    sd = fields.std(axis=(1, 2), keepdims=True)
    fields /= np.where(sd > 0, sd, 1.0)
    z = fields / temperature
    z -= z.max(axis=0, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=0, keepdims=True)


def _endmembers(endmembers, wavelength, fwhm, n_endmembers, rng):
    """(E (p, bands) float64, names, wavelength or None, fwhm or None)."""
    if endmembers is None:
        wl = crism_like_wavelengths() if wavelength is None else np.asarray(wavelength, dtype=float).ravel()
        pool = families_in_range(float(wl.min()), float(wl.max()))
        if not 1 <= n_endmembers <= len(pool):
            raise OrbitmlInputError(
                f"n_endmembers must be 1-{len(pool)} (mineral families with a band in "
                f"{wl.min():.0f}-{wl.max():.0f} nm), got {n_endmembers}"
            )
        chosen = [pool[i] for i in np.sort(rng.choice(len(pool), n_endmembers, replace=False))]
        endmembers = chosen
    if isinstance(endmembers, (list, tuple)) and endmembers and all(isinstance(e, str) for e in endmembers):
        wl = crism_like_wavelengths() if wavelength is None else np.asarray(wavelength, dtype=float).ravel()
        lib = library_from_families(wl, list(endmembers), variants=1)
        return lib.spectra, list(lib.names), wl, None if fwhm is None else np.asarray(fwhm, float)
    if isinstance(endmembers, SpectralLibrary):
        lib = endmembers
        if wavelength is not None:
            wl = np.asarray(wavelength, dtype=float).ravel()
            if wl.shape != lib.wavelength.shape or not np.allclose(wl, lib.wavelength):
                fw = np.gradient(wl) if fwhm is None else fwhm
                lib = lib.resample(wl, fw)
        E = np.asarray(lib.spectra, dtype=np.float64)
        return E, list(lib.names), lib.wavelength.copy(), None if lib.fwhm is None else lib.fwhm.copy()
    E = np.asarray(endmembers, dtype=np.float64)
    if E.ndim != 2 or E.shape[0] < 1:
        raise OrbitmlInputError(
            f"endmembers must be a (p, bands) array, a SpectralLibrary or family names, got shape {E.shape}"
        )
    wl = None if wavelength is None else np.asarray(wavelength, dtype=float).ravel()
    if wl is not None and wl.size != E.shape[1]:
        raise OrbitmlInputError(f"{wl.size} wavelengths for endmembers with {E.shape[1]} bands")
    return (
        E,
        [f"endmember_{i + 1}" for i in range(E.shape[0])],
        wl,
        None if fwhm is None else np.asarray(fwhm),
    )


def _nodata_mask(shape, fraction, smoothness, rng) -> np.ndarray:
    h, w = shape
    k = int(round(fraction * h * w))
    nodata = np.zeros(h * w, dtype=bool)
    if k > 0:
        f = gaussian_filter(rng.standard_normal(shape), sigma=max(2.0, 1.5 * smoothness), mode="reflect")
        nodata[np.argsort(-f.ravel(), kind="stable")[:k]] = True
    return nodata.reshape(shape)


def simulate_scene(
    endmembers: Any = None,
    wavelength: Any = None,
    *,
    shape: tuple[int, int] = (64, 64),
    n_endmembers: int = 5,
    snr_db: float | None = 40.0,
    smoothness: float = 8.0,
    nodata_fraction: float = 0.0,
    pure_pixels: bool = False,
    crs: Any = None,
    transform: Any = None,
    seed: int | None = 0,
    temperature: float = 0.5,
    fwhm: Any = None,
) -> SimulatedScene:
    """Simulate a linearly mixed scene; see the module docstring for the model.

    ``endmembers``: None (``n_endmembers`` mineral families chosen by ``seed`` among those with a
    band in range), a list of family names, a :class:`SpectralLibrary` (resampled to ``wavelength``
    when that differs) or a ``(p, bands)`` array.  ``wavelength`` in nm, default a CRISM-like grid
    1000-2598 nm every 6.55 nm.  ``snr_db=None`` gives a noise-free scene.  ``pure_pixels`` makes
    one valid pixel per endmember pure (at its abundance maximum).
    """
    if len(shape) != 2 or min(shape) < 1:
        raise OrbitmlInputError(f"shape must be two positive integers (height, width), got {shape}")
    shape = (int(shape[0]), int(shape[1]))
    if not 0.0 <= nodata_fraction < 1.0:
        raise OrbitmlInputError(f"nodata_fraction must lie in [0, 1), got {nodata_fraction}")
    if smoothness < 0 or temperature <= 0:
        raise OrbitmlInputError("smoothness must be >= 0 and temperature > 0")
    r_em, r_ab, r_nd, r_noise = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    E, names, wl, fw = _endmembers(endmembers, wavelength, fwhm, n_endmembers, r_em)
    if not np.all(np.isfinite(E)):
        raise OrbitmlInputError(
            f"endmember spectra have missing values at {int((~np.isfinite(E)).any(0).sum())} bands; "
            "choose bands inside the library's range or other spectra"
        )
    p = E.shape[0]
    A = smooth_simplex(p, shape, smoothness, temperature, r_ab)
    nodata = _nodata_mask(shape, nodata_fraction, smoothness, r_nd)
    valid = ~nodata
    if pure_pixels:
        if p > valid.sum():
            raise OrbitmlInputError(f"{p} pure pixels asked for but only {int(valid.sum())} valid pixels")
        taken = nodata.ravel().copy()
        flat = A.reshape(p, -1)
        for j in range(p):
            score = np.where(taken, -np.inf, flat[j])
            i = int(np.argmax(score))
            flat[:, i] = 0.0
            flat[j, i] = 1.0
            taken[i] = True
    clean = np.einsum("pb,pyx->byx", E, A)
    if snr_db is None or not np.isfinite(snr_db):
        noise_std = 0.0
        data = clean.copy()
    else:
        power = float(np.mean(clean[:, valid] ** 2))
        noise_std = float(np.sqrt(power / 10.0 ** (float(snr_db) / 10.0)))
        data = clean + noise_std * r_noise.standard_normal(clean.shape)
    data = data.astype(np.float32)
    data[:, nodata] = np.nan
    labels = np.argmax(A, axis=0).astype(np.int16)
    labels[nodata] = -1
    attrs = {
        "instrument": "simulated",
        "units": "reflectance",
        "product_id": f"simulated_seed{seed}",
        "snr_db": "none" if snr_db is None else float(snr_db),
        "endmembers": ", ".join(names),
    }
    scene = make_scene(data, wavelength=wl, fwhm=fw, crs=crs, transform=transform, nodata=np.nan, attrs=attrs)
    return SimulatedScene(
        scene=scene,
        abundances=A,
        endmembers=E,
        names=names,
        valid=valid,
        labels=labels,
        wavelength=None if wl is None else np.asarray(wl, dtype=float),
        noise_std=noise_std,
        snr_db=None if snr_db is None else float(snr_db),
        metadata={
            "seed": seed,
            "smoothness": smoothness,
            "temperature": temperature,
            "nodata_fraction": nodata_fraction,
            "pure_pixels": pure_pixels,
        },
    )
