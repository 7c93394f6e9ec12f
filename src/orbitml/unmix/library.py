"""Unmixing against a spectral library: checks, resampling to the scene, pruning and endmember bundles.

:func:`prepare_library` makes a :class:`~orbitml.spectra.SpectralLibrary` usable on a scene's bands
(resampled when it covers them, refused when it does not; NaN and duplicate spectra are errors that
name the spectra).  :func:`unmix_library` runs FCLS / NNLS / SUnSAL / CLSUnSAL against it and
returns a :class:`LibraryUnmixing`: the spectra actually used (largest total abundance first), their
abundances, the residual per pixel, and for a library whose spectra carry classes (endmember
bundles, :meth:`SpectralLibrary.group`) the abundance of each class = the sum over its spectra.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.unmix._checks import as_pixels

__all__ = ["LibraryUnmixing", "prepare_library", "unmix_library", "bundle_abundances", "METHODS"]

METHODS = ("fcls", "nnls", "sunsal", "clsunsal")


def _names(idx, names, limit=5) -> str:
    shown = ", ".join(repr(names[i]) for i in idx[:limit])
    return shown + (f" ... ({len(idx)} in all)" if len(idx) > limit else "")


def prepare_library(lib: Any, wavelength: Any = None, fwhm: Any = None, *, n_bands: int | None = None,
                    source: Any = None, drop_incomplete: bool = False, drop_duplicates: bool = False,
                    notes: list[str] | None = None) -> Any:
    """Check a library and bring it onto the scene's bands.

    * same band centres (within 0.05 nm) or no scene wavelengths but the same band count: used as is;
    * other centres that the library's range covers: resampled with Gaussian responses
      (:func:`orbitml.spectra.resample_to_bands`; FWHM from ``fwhm``, else from the band spacing);
    * otherwise refused, naming both ranges.

    NaN values in a spectrum are an error (``drop_incomplete=True`` drops those spectra instead, with a
    note), so are two identical spectra (``drop_duplicates=True`` keeps the first) and an all-zero
    spectrum.  ``source`` (the file) is named in
    every error.
    """
    from orbitml.spectra import SpectralLibrary, resample_to_bands

    notes = notes if notes is not None else []
    if not isinstance(lib, SpectralLibrary):
        raise OrbitmlInputError(f"expected a SpectralLibrary, got {type(lib).__name__}", source)
    if len(lib) == 0:
        raise OrbitmlInputError("the library holds no spectra", source)
    wl = None if wavelength is None else np.asarray(wavelength, dtype=np.float64).ravel()
    nb = wl.size if wl is not None else n_bands
    if wl is None or lib.n_bands == wl.size and np.allclose(lib.wavelength, wl, atol=0.05):
        if nb is not None and lib.n_bands != nb:
            raise OrbitmlInputError(f"the library has {lib.n_bands} bands but the scene has {nb} and no "
                                    "wavelengths to resample it to", source)
    else:
        lo, hi = float(lib.wavelength[0]), float(lib.wavelength[-1])
        if wl.min() < lo or wl.max() > hi:
            raise OrbitmlInputError(
                f"the library covers {lo:.1f}-{hi:.1f} nm but the scene's bands span {wl.min():.1f}-{wl.max():.1f} "
                "nm: it cannot be resampled onto them (select scene bands inside the library's range)", source)
        if fwhm is None:
            fw = np.gradient(wl) if wl.size > 1 else np.array([10.0])
            how = "FWHM = band spacing (the scene gives none)"
        else:
            fw = np.asarray(fwhm, dtype=np.float64)
            how = "the scene's FWHM"
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lib = resample_to_bands(lib, None, wl, fw)
        notes.append(f"library resampled from {lo:.1f}-{hi:.1f} nm onto the scene's {wl.size} bands ({how})")
    S = lib.spectra
    bad = np.flatnonzero(~np.isfinite(S).all(axis=1))
    if bad.size:
        if not drop_incomplete:
            raise OrbitmlInputError(f"{bad.size} of {len(lib)} library spectra have missing values (NaN) on the "
                                    f"scene's bands: {_names(bad, lib.names)}; drop them (--drop-incomplete) or "
                                    "select others", source)
        keep = np.setdiff1d(np.arange(len(lib)), bad)
        if keep.size == 0:
            raise OrbitmlInputError("every library spectrum has missing values (NaN) on the scene's bands", source)
        notes.append(f"dropped {bad.size} library spectra with missing values: {_names(bad, lib.names)}")
        lib = lib.take(keep)
        S = lib.spectra
    zero = np.flatnonzero(np.abs(S).max(axis=1) == 0)
    if zero.size:
        raise OrbitmlInputError(f"library spectra {_names(zero, lib.names)} are all zero", source)
    S64 = S.astype(np.float64)
    tol = 1e-9 * float(np.abs(S64).max())
    order = np.lexsort(S64.T[::-1])
    diff = np.abs(np.diff(S64[order], axis=0)).max(axis=1) <= tol
    if diff.any():
        pairs = [tuple(sorted((int(order[k]), int(order[k + 1])))) for k in np.flatnonzero(diff)]
        if not drop_duplicates:
            i, j = pairs[0]
            raise OrbitmlInputError(f"duplicate spectra in the library: {lib.names[i]!r} (#{i + 1}) and "
                                    f"{lib.names[j]!r} (#{j + 1}) are identical ({len(pairs)} duplicate pair(s) in "
                                    "all); remove the copies (--drop-duplicates keeps the first of each)", source)
        drop = sorted({j for _, j in pairs})
        notes.append(f"dropped {len(drop)} duplicate spectra: {_names(drop, lib.names)}")
        lib = lib.take(np.setdiff1d(np.arange(len(lib)), drop))
    return lib


def bundle_abundances(A: np.ndarray, class_index: Any, n_classes: int | None = None) -> np.ndarray:
    """Class abundances ``(n_pixels, n_classes)``: the sum of the abundances of each class's spectra."""
    A = np.asarray(A, dtype=np.float64)
    ci = np.asarray(class_index, dtype=int).ravel()
    if ci.size != A.shape[1]:
        raise OrbitmlInputError(f"{ci.size} class indices for {A.shape[1]} spectra")
    k = int(ci.max()) + 1 if n_classes is None else int(n_classes)
    onehot = np.zeros((A.shape[1], k))
    onehot[np.arange(ci.size), ci] = 1.0
    return A @ onehot


@dataclass
class LibraryUnmixing:
    """Result of :func:`unmix_library`.

    ``abundances`` (n_pixels, k) for the ``k`` selected spectra, ordered by total abundance (largest
    first); ``indices`` their rows in the library given; ``rmse`` the residual per pixel
    (``sqrt(mean over bands of (x - a E)^2)``, from all spectra, not only the selected ones);
    ``class_abundances`` (n_pixels, n_classes) when classes were given.
    """

    abundances: np.ndarray
    indices: np.ndarray
    names: list[str]
    total: np.ndarray
    rmse: np.ndarray
    method: str
    lam: float | None
    n_library: int
    class_names: list[str] | None = None
    class_abundances: np.ndarray | None = None
    class_of_selected: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    library: Any = None  # the (grouped) library that ``indices`` refer to

    def dense(self) -> np.ndarray:
        """Abundances ``(n_pixels, n_library)`` in library order (zeros for unselected spectra)."""
        out = np.zeros((self.abundances.shape[0], self.n_library))
        out[:, self.indices] = self.abundances
        return out


def _run(method: str, X: np.ndarray, E: np.ndarray, lam: Any, tol: float | None, notes: list[str]):
    from orbitml.unmix.abundance import _check_penalty, fcls, nnls
    from orbitml.unmix.sparse import clsunsal, sunsal

    if method in ("fcls", "nnls"):
        if lam is not None and _check_penalty(lam, "lambda") != 0:
            raise OrbitmlInputError(f"lambda applies to sunsal and clsunsal, not to {method}")
        A = (fcls if method == "fcls" else nnls)(X, E, **({} if tol is None else {"tol": tol}))
        return A, None
    kw = {} if tol is None else {"tol": tol}
    A, info = (sunsal if method == "sunsal" else clsunsal)(X, E, lam, return_info=True, **kw)
    notes.extend(info.notes)
    notes.append(f"{method} ADMM: {info.iterations} iterations, final mu {info.mu:.3g} x ||E||^2")
    return A, info.lam


def unmix_library(X: Any, library: Any, method: str = "fcls", lam: float | None = None, *,
                  classes: Any = None, min_abundance: float = 1e-3, tol: float | None = None,
                  source: Any = None) -> LibraryUnmixing:
    """Abundances of every pixel against a library; the spectra used, ordered by total abundance.

    ``library``: a :class:`~orbitml.spectra.SpectralLibrary` on the pixels' bands (see
    :func:`prepare_library`) or a ``(p, bands)`` array.  ``method``: ``fcls``, ``nnls``, ``sunsal``
    or ``clsunsal``; ``lam`` the sparsity penalty (data units; None = the documented rule).
    ``classes``: ``{"Class": "name pattern", ...}`` (endmember bundles via
    :meth:`SpectralLibrary.group`: only the spectra of the classes are used, and each class's
    abundance is the sum over its spectra) or a sequence of one class name per spectrum.
    A spectrum is *selected* when its abundance reaches ``min_abundance`` in some pixel.
    """
    from orbitml.spectra import SpectralLibrary

    if method not in METHODS:
        raise OrbitmlInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    X, _ = as_pixels(X)
    notes: list[str] = []
    lib = library if isinstance(library, SpectralLibrary) else SpectralLibrary(
        np.asarray(library, dtype=np.float64), np.arange(1, np.asarray(library).shape[-1] + 1, dtype=float))
    class_names = class_index = None
    if classes is not None:
        if isinstance(classes, dict) or (len(classes) and isinstance(classes[0], tuple)):
            lib, class_index, class_names = lib.group(classes)
        else:
            labels = [str(c) for c in classes]
            if len(labels) != len(lib):
                raise OrbitmlInputError(f"{len(labels)} class labels for {len(lib)} library spectra", source)
            class_names = list(dict.fromkeys(labels))
            class_index = np.array([class_names.index(c) for c in labels])
        notes.append(f"{len(class_names)} classes over {len(lib)} spectra: "
                     + ", ".join(f"{c} ({int((class_index == k).sum())})" for k, c in enumerate(class_names)))
    if not 0 <= min_abundance < 1:
        raise OrbitmlInputError(f"min_abundance must lie in [0, 1), got {min_abundance}")
    E = lib.spectra.astype(np.float64)
    A, lam_used = _run(method, X, E, lam, tol, notes)
    resid = np.sqrt(np.mean((A @ E - X) ** 2, axis=1))
    used = np.flatnonzero(A.max(axis=0) >= max(min_abundance, np.finfo(float).tiny))
    total = A[:, used].sum(axis=0)
    order = used[np.argsort(-total, kind="stable")]
    out = LibraryUnmixing(abundances=A[:, order], indices=order, names=[lib.names[i] for i in order],
                          total=A[:, order].sum(axis=0), rmse=resid, method=method, lam=lam_used, n_library=len(lib),
                          notes=notes)
    if class_names is not None:
        out.class_names = class_names
        out.class_abundances = bundle_abundances(A, class_index, len(class_names))
        out.class_of_selected = [class_names[class_index[i]] for i in order]
    out.library = lib
    return out
