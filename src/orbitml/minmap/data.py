"""Training data for minmap: class libraries on the scene's bands, augmentation, synthetic patches.

1. :func:`scene_bands` picks the scene bands to use: bad-band / atmospheric-window ranges removed,
   optionally a keep range, bands empty in the whole scene dropped.
2. :func:`load_class_libraries` reads one library per class (a folder of library files, class =
   file stem, or a library + a name pattern per class) and :func:`resample_classes` convolves them
   to those bands with Gaussian responses (centres and FWHM).  A library that does not cover the
   bands, or a class left without a spectrum, is a clear error before anything is trained.
3. :func:`augment_pools` draws augmented spectra per class (offset, scale, tilt, noise).
4. :func:`synthesise_patches` builds ``patch x patch`` training patches in the projected space:
   spatially smooth abundance fields on the simplex, each pixel's class spectra drawn at random
   from the augmented pools, a smooth illumination field and pixel noise; each patch is labelled
   with its centre pixel's class and abundance vector.  The projection is linear (affine), so
   mixing projected spectra equals projecting the mixed spectra: patches are built directly in
   the R-dimensional space at a fraction of the memory.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from orbitml.errors import OrbitmlInputError
from orbitml.scene import empty_bands, wavelengths
from orbitml.spectra import SpectralLibrary, read_library
from orbitml.spectra.augment import BandNoise, Compose, Offset, Scale, Tilt, augment_library

__all__ = ["scene_bands", "load_class_libraries", "resample_classes", "augment_pools", "synthesise_patches",
           "fit_angle", "calibrate_rejection"]

LIBRARY_SUFFIXES = {".sli", ".csv", ".txt", ".tsv"}


def scene_bands(scene, remove_nm, keep_nm=None, path: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``(band indices, centres nm, FWHM nm, fwhm note)`` of the scene bands the model uses."""
    wl = wavelengths(scene)
    if wl is None:
        raise OrbitmlInputError("the scene has no wavelengths; minmap needs band centres (nm) to resample "
                                "the libraries (ENVI `wavelength` / GeoTIFF tags)", path)
    if "fwhm" in scene.coords:
        fw = np.asarray(scene.coords["fwhm"].values, dtype=float)
        note = "scene FWHM"
    else:
        fw = np.abs(np.gradient(wl)) if wl.size > 1 else np.full(1, 10.0)
        note = "FWHM not in the scene: taken as the band spacing"
    keep = np.ones(wl.size, dtype=bool)
    for lo, hi in remove_nm:
        keep &= ~((wl >= lo) & (wl <= hi))
    if keep_nm is not None:
        keep &= (wl >= keep_nm[0]) & (wl <= keep_nm[1])
    keep[empty_bands(scene)] = False
    keep &= np.isfinite(wl) & np.isfinite(fw) & (fw > 0)
    idx = np.flatnonzero(keep)
    if idx.size < 3:
        raise OrbitmlInputError(f"only {idx.size} scene bands left after band removal; check bands.remove_nm "
                                "and bands.keep_nm", path)
    return idx, wl[idx], fw[idx], note


def _library_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in LIBRARY_SUFFIXES)
    if len(files) < 2:
        raise OrbitmlInputError(f"library_dir holds {len(files)} library files (.sli/.csv/.txt); need one per "
                                "class, at least two", folder)
    return files


def load_class_libraries(classes: dict[str, Any] | None = None, library_dir: str | os.PathLike | None = None
                         ) -> tuple[dict[str, SpectralLibrary], dict[str, str]]:
    """``({class: library}, {class: source file})``; an empty class is an error naming its library."""
    out: dict[str, SpectralLibrary] = {}
    src: dict[str, str] = {}
    if library_dir is not None:
        for f in _library_files(Path(library_dir)):
            lib = read_library(f)
            if len(lib) == 0:
                raise OrbitmlInputError(f"class {f.stem!r} has no spectra", f)
            out[f.stem], src[f.stem] = lib, str(f)
        return out, src
    cache: dict[tuple[str, str | None], SpectralLibrary] = {}
    for name, spec in (classes or {}).items():
        key = (spec.library, spec.wavelengths)
        if key not in cache:
            cache[key] = read_library(spec.library, wavelengths=spec.wavelengths)
        lib = cache[key]
        if spec.pattern is not None or spec.names is not None:
            try:
                lib = lib.select(spec.pattern, names=spec.names)
            except Exception as exc:  # a bad regular expression
                raise OrbitmlInputError(f"class {name!r}: bad pattern {spec.pattern!r}: {exc}", spec.library) from None
        if len(lib) == 0:
            what = f"pattern {spec.pattern!r}" if spec.pattern is not None else f"names {spec.names}"
            raise OrbitmlInputError(f"class {name!r} has no spectra: {what} matches nothing", spec.library)
        out[name], src[name] = lib, spec.library
    return out, src


def resample_classes(libs: dict[str, SpectralLibrary], wl: np.ndarray, fw: np.ndarray,
                     sources: dict[str, str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Each class's spectra on the scene bands ``(n, B)``; spectra with a missing band are dropped.

    Returns ``(spectra per class, dropped count per class)``.
    """
    sources = sources or {}
    out, dropped = {}, {}
    for name, lib in libs.items():
        lo, hi = float(lib.wavelength[0]), float(lib.wavelength[-1])
        if wl.min() < lo or wl.max() > hi:
            n_out = int(((wl < lo) | (wl > hi)).sum())
            raise OrbitmlInputError(
                f"class {name!r}: the library covers {lo:.1f}-{hi:.1f} nm but {n_out} of the scene's selected "
                f"bands ({wl.min():.1f}-{wl.max():.1f} nm) lie outside it; restrict the bands with "
                "bands.keep_nm / bands.remove_nm", sources.get(name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            S = lib.resample(wl, fw).spectra
        ok = np.isfinite(S).all(axis=1)
        if not ok.any():
            raise OrbitmlInputError(f"class {name!r}: none of its {len(lib)} spectra has values at every selected "
                                    "band (missing points); remove those bands or give other spectra",
                                    sources.get(name))
        out[name], dropped[name] = S[ok].astype(np.float64), int((~ok).sum())
    return out, dropped


def augment_pools(spectra: dict[str, np.ndarray], wl: np.ndarray, cfg: Any, seed: int) -> list[np.ndarray]:
    """``n_per_class`` augmented spectra per class (``(n, B)`` float32 each), seeded per class."""
    aug = Compose([Offset(cfg.offset), Scale(*cfg.scale), Tilt(cfg.tilt), BandNoise(snr=cfg.snr)])
    seeds = np.random.SeedSequence(seed).spawn(len(spectra))
    pools = []
    for (_, S), ss in zip(spectra.items(), seeds, strict=True):
        per = int(np.ceil(cfg.n_per_class / S.shape[0]))
        X, _ = augment_library(S, per, aug, wavelength=wl, include_original=True,
                               random_state=int(ss.generate_state(1)[0]))
        rng = np.random.default_rng(ss)
        pools.append(X[rng.permutation(X.shape[0])[:max(cfg.n_per_class, S.shape[0])]])
    return pools


def _fields(n: int, k: int, size: int, smooth, temp, rng) -> np.ndarray:
    """``(n, k, size, size)`` smooth abundance fields, >= 0, summing to one."""
    z = rng.standard_normal((n, k, size, size))
    s = rng.uniform(*smooth, size=n)
    t = rng.uniform(*temp, size=n)
    for i in range(n):
        z[i] = gaussian_filter(z[i], sigma=(0, s[i], s[i]), mode="reflect")
    z -= z.mean(axis=(2, 3), keepdims=True)
    z /= np.maximum(z.std(axis=(2, 3), keepdims=True), 1e-12)
    z /= t[:, None, None, None]
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def synthesise_patches(pools_z: list[np.ndarray], bias: np.ndarray, n: int, patch: int, cfg: Any,
                       noise_chol: np.ndarray | None, seed: int, chunk: int = 128
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X (n, R, patch, patch) float32, centre class (n,) int64, centre abundances (n, K) float32)``.

    ``pools_z``: per class, augmented spectra already projected (linear part, ``(m, R)``);
    ``bias`` (R,) the affine part added after mixing; ``noise_chol`` (R, R) turns unit normal
    draws into projected pixel noise (None: no noise).  Centre classes are balanced: each patch
    gets a target class, and the abundance field's channels are swapped so that class is largest
    at the centre.
    """
    rng = np.random.default_rng(seed)
    K, R = len(pools_z), pools_z[0].shape[1]
    c = patch // 2
    X = np.empty((n, R, patch, patch), dtype=np.float32)
    y = rng.permutation(np.arange(n) % K).astype(np.int64)
    ab = np.empty((n, K), dtype=np.float32)
    for s0 in range(0, n, chunk):
        s1 = min(n, s0 + chunk)
        m = s1 - s0
        A = _fields(m, K, patch, cfg.smoothness, cfg.temperature, rng)
        top = A[:, :, c, c].argmax(axis=1)
        for i in range(m):  # move the target class to the channel that dominates the centre
            t = y[s0 + i]
            if top[i] != t:
                A[i, [t, top[i]]] = A[i, [top[i], t]]
        Z = np.zeros((m, patch, patch, R))
        for k, pool in enumerate(pools_z):
            pick = rng.integers(0, pool.shape[0], size=(m, patch, patch))
            Z += A[:, k, :, :, None] * pool[pick]
        if cfg.illumination > 0:
            f = gaussian_filter(rng.standard_normal((m, patch, patch)), sigma=(0, 4, 4), mode="reflect")
            f = (f - f.min(axis=(1, 2), keepdims=True)) / np.maximum(np.ptp(f, axis=(1, 2), keepdims=True), 1e-12)
            Z *= (1.0 - cfg.illumination / 2 + cfg.illumination * f)[..., None]
        if noise_chol is not None:
            Z += rng.standard_normal(Z.shape) @ noise_chol.T
        Z += bias
        X[s0:s1] = np.moveaxis(Z, -1, 1)
        ab[s0:s1] = A[:, :, c, c]
    return X, y, ab


def noise_sd(pools: list[np.ndarray], snr_db: float) -> float:
    """Per-band pixel noise for ``snr_db`` relative to the mean power of the augmented library spectra."""
    return float(np.sqrt(np.mean(np.vstack(pools).astype(np.float64) ** 2) / 10 ** (snr_db / 10)))


def _smooth_terms(n_bands: int, scale: float) -> np.ndarray:
    """+-offset and +-linear tilt across the bands (what the augmentation adds), scaled like the spectra."""
    t = np.linspace(-1.0, 1.0, n_bands)
    one = np.ones(n_bands)
    return scale * np.stack([one, -one, t, -t])


def fit_angle(X: np.ndarray, E: np.ndarray, smooth_bands: float = 2.0) -> np.ndarray:
    """Spectral angle (degrees) between each spectrum and its NNLS fit by the class-mean spectra ``E``
    plus an offset and a linear tilt of either sign.

    Scale does not change it (illumination), mixtures of the classes fit well, offsets and tilts are
    absorbed; a material that is not in the libraries leaves absorption features the class spectra
    cannot explain.  Spectra are first smoothed along the bands (Gaussian, ``smooth_bands`` sigma).
    """
    from scipy.ndimage import gaussian_filter1d

    from orbitml.unmix import nnls

    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] == 0:
        return np.zeros(0)
    if smooth_bands > 0:  # white noise averages out, absorption bands (several bands wide) stay
        X = gaussian_filter1d(X, smooth_bands, axis=1, mode="nearest")
        E = gaussian_filter1d(np.asarray(E, dtype=np.float64), smooth_bands, axis=1, mode="nearest")
    B = np.vstack([E, _smooth_terms(E.shape[1], float(np.abs(E).mean()))])
    fit = nnls(X, B) @ B
    num = np.einsum("ij,ij->i", X, fit)
    den = np.linalg.norm(X, axis=1) * np.linalg.norm(fit, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(den > 0, num / den, -1.0)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def calibrate_rejection(pools: list[np.ndarray], E: np.ndarray, cfg: Any, seed: int, n_per_class: int = 500,
                        quantile: float = 0.995, margin: float = 1.5) -> dict[str, Any]:
    """The largest fit angle of spectra the model was trained for.

    For each class, ``n_per_class`` pixels dominated by it (fraction 0.7-1, the rest a Dirichlet mixture
    of the other classes) are drawn from the augmented library spectra, with illumination and pixel noise
    as in the patches.  The threshold is ``margin`` x the largest per-class ``quantile`` of their fit
    angles, so a dark class (lower signal-to-noise) is not rejected for its noise.
    """
    rng = np.random.default_rng(seed)
    K = len(pools)
    qs = []
    for k in range(K):
        n = int(n_per_class)
        f = rng.uniform(0.7, 1.0, size=(n, 1))
        w = rng.dirichlet(np.ones(K - 1), size=n) * (1 - f)
        w = np.insert(w, k, f[:, 0], axis=1)
        X = sum(w[:, j:j + 1] * pools[j][rng.integers(0, pools[j].shape[0], n)] for j in range(K))
        X = X * rng.uniform(1 - cfg.illumination / 2, 1 + cfg.illumination / 2, size=(n, 1))
        if cfg.snr_db is not None:
            sd = noise_sd(pools, cfg.snr_db)
            X = X + sd * rng.standard_normal(X.shape)
        qs.append(float(np.quantile(fit_angle(X, E), quantile)))
    q = max(qs)
    return {"method": "spectral angle between a pixel and its NNLS fit by the class-mean library spectra "
                      "plus an offset and a linear tilt",
            "max_angle_deg": q * margin, "quantile": quantile, "margin": margin, "per_class_quantile_deg": qs,
            "calibration": f"{n_per_class} pixels per class dominated by it (0.7-1), from augmented library "
                           "spectra with illumination and pixel noise"}
