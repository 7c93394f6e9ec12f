"""Input checks shared by the unmixing functions.

Policy (documented in docs/unmix.md):

* spectra are ``(n_pixels, n_bands)`` arrays; a scene (``xarray.DataArray``) is accepted too and
  its valid pixels are taken with :func:`orbitml.scene.pixels` (nodata and NaN pixels dropped,
  pixel indices are then flat ``y * width + x`` indices into the scene);
* a NaN or infinite value in an array is an error (it names how many pixels and which bands):
  drop those pixels first, or pass the scene so that its nodata mask is used;
* a band that is non-finite in every pixel is reported by number;
* ``p`` larger than the number of bands, or larger than the number of valid pixels, is an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError, count


def as_pixels(X: Any, what: str = "X", check_finite: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(spectra, index)``: a finite 2-D array and, for scenes, the flat pixel indices.

    ``check_finite=False`` skips the (memory-bound) finiteness scan for callers that detect
    non-finite values more cheaply later and then call :func:`check_finite_pixels`.
    """
    index = None
    try:
        import xarray as xr

        if isinstance(X, xr.DataArray):
            from orbitml.scene import pixels

            if X.ndim != 3:
                raise OrbitmlInputError(f"{what}: a scene must have dims (band, y, x), got {X.dims}")
            bad_band = _all_nodata_bands(X)
            if bad_band.size:
                raise OrbitmlInputError(
                    f"{what}: band(s) {_fmt_bands(bad_band)} hold no valid value in any pixel (all nodata); "
                    "drop them (orbitml.scene.select_bands or isel) before unmixing")
            X, index = pixels(X)
    except ImportError:  # pragma: no cover - xarray is a hard dependency
        pass
    X = np.asarray(X)
    if X.ndim != 2:
        raise OrbitmlInputError(f"{what} must be a 2-D (n_pixels, n_bands) array, got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise OrbitmlInputError(f"{what} must be numeric, got dtype {X.dtype}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise OrbitmlInputError(f"{what} is empty (shape {X.shape}): no valid pixels or no bands")
    if check_finite:
        check_finite_pixels(X, what)
    return X, index


def check_finite_pixels(X: np.ndarray, what: str = "X") -> None:
    """Raise a clear error when X holds NaN or inf (names all-nodata bands and bad pixel counts)."""
    finite = np.isfinite(X)
    if not finite.all():
        bad_cols = np.flatnonzero(~finite.any(axis=0))
        if bad_cols.size:
            raise OrbitmlInputError(
                f"{what}: band(s) {_fmt_bands(bad_cols)} are NaN/inf in every pixel (all-nodata bands); "
                "drop them before unmixing")
        n_bad = int((~finite.all(axis=1)).sum())
        raise OrbitmlInputError(
            f"{what}: {n_bad} of {X.shape[0]} pixels hold NaN or inf; drop them first "
            "(orbitml.scene.pixels does so for a scene, honouring its nodata mask)")


def _all_nodata_bands(scene: Any) -> np.ndarray:
    from orbitml.scene import empty_bands

    return empty_bands(scene)


def _fmt_bands(cols: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(c) + 1) for c in cols[:limit])
    return shown + (f", ... ({cols.size} in all)" if cols.size > limit else "")


def check_p(p: Any, X: np.ndarray, what: str = "p", min_p: int = 1) -> int:
    """Validate an endmember count against the data shape."""
    try:
        p_int = int(p)
    except (TypeError, ValueError):
        raise OrbitmlInputError(f"{what} must be an integer, got {p!r}") from None
    if p_int != p or p_int < min_p:
        raise OrbitmlInputError(f"{what} must be an integer >= {min_p}, got {p!r}")
    n, b = X.shape
    if p_int > b:
        raise OrbitmlInputError(f"{what}={p_int} endmembers is more than the {count(b, 'band')} of the data")
    if p_int > n:
        raise OrbitmlInputError(f"{what}={p_int} endmembers but only {n} valid pixels")
    return p_int


def constant_bands(X: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Boolean per band: True where the band has (numerically) zero variance."""
    X = np.asarray(X, dtype=np.float64)
    spread = X.max(axis=0) - X.min(axis=0)
    scale = max(float(np.abs(X).max()), np.finfo(float).tiny)
    return spread <= rtol * scale


def check_endmembers(E: Any, n_bands: int, what: str = "endmembers") -> np.ndarray:
    """Endmembers as a finite ``(p, n_bands)`` float64 array."""
    E = np.asarray(E, dtype=np.float64)
    if E.ndim == 1:
        E = E[None, :]
    if E.ndim != 2:
        raise OrbitmlInputError(f"{what} must be a 2-D (p, n_bands) array, got shape {E.shape}")
    if E.shape[1] != n_bands:
        if E.shape[0] == n_bands and E.shape[1] != n_bands:
            raise OrbitmlInputError(
                f"{what} has shape {E.shape}: expected (p, {n_bands}) with one endmember per row "
                "(transpose it)")
        raise OrbitmlInputError(f"{what} has {count(E.shape[1], 'band')} but the data has {n_bands}")
    if not np.isfinite(E).all():
        raise OrbitmlInputError(f"{what} hold NaN or inf values")
    if E.shape[0] == 0:
        raise OrbitmlInputError(f"{what}: no endmembers given")
    norms = np.linalg.norm(E, axis=1)
    if (norms == 0).any():
        raise OrbitmlInputError(f"{what}: endmember(s) {np.flatnonzero(norms == 0).tolist()} are all zero")
    return E
