"""Resample spectra to a sensor's bands with a Gaussian spectral response function (SRF).

Each destination band ``k`` has a Gaussian response with centre ``c_k`` and full width at half
maximum ``f_k`` (sigma = f / (2 sqrt(2 ln 2))).  The source spectrum is taken as the piecewise-
linear curve through its samples, and the integral of (response x spectrum) over the source range
is computed *exactly* for that curve (closed form with the normal CDF and PDF): the weight of
source sample ``j`` is the integral of the response times the "hat" function of sample ``j``.
This is the trapezoid rule made exact for the Gaussian, so it stays correct whether the source is
sampled much finer or much coarser than the destination bands.  The result is divided by the
integral of the response over the source range (renormalised), so a flat spectrum stays flat.

Missing source values (NaN) are left out and the weights renormalised over the valid support; a
band whose valid support carries less than ``min_support`` of its in-range response weight is NaN.
A destination band whose centre lies outside the source range is NaN, with a warning.

All of it is one ``(n_dst, n_src)`` matrix, applied with one matrix product.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import ndtr

from orbitml.errors import OrbitmlInputError

__all__ = ["FWHM_TO_SIGMA", "response_matrix", "resample_to_bands"]

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _as_axis(values: Any, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise OrbitmlInputError(f"{name} must be a non-empty array of finite numbers (nm)")
    return a


def response_matrix(src_wavelength: Any, dst_centres: Any, dst_fwhm: Any) -> np.ndarray:
    """``(n_dst, n_src)`` integrals of each Gaussian response against each source hat function.

    ``src_wavelength`` must be strictly ascending.  Rows are *not* normalised: a row sums to the
    fraction of that band's response lying inside the source range.  ``dst_fwhm`` may be a scalar.
    """
    x = _as_axis(src_wavelength, "source wavelengths")
    c = _as_axis(dst_centres, "band centres")
    f = np.broadcast_to(np.asarray(dst_fwhm, dtype=np.float64), c.shape).astype(np.float64)
    if not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise OrbitmlInputError("band FWHM values must be positive numbers (nm)")
    if x.size > 1 and np.any(np.diff(x) <= 0):
        raise OrbitmlInputError("source wavelengths must be strictly ascending")
    W = np.zeros((c.size, x.size))
    if x.size == 1:
        return W
    s = (f * FWHM_TO_SIGMA)[:, None]
    u = x[None, :] - c[:, None]  # source nodes relative to each band centre
    z = u / s
    cdf, pdf = ndtr(z), _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    i0 = np.diff(cdf, axis=1)  # integral of the normalised Gaussian over each interval
    j1 = -s * np.diff(pdf, axis=1)  # integral of (x - c) * Gaussian over each interval
    h = np.diff(x)[None, :]
    left = (u[:, 1:] * i0 - j1) / h  # weight of the interval's left node  ((x_{k+1} - x) / h)
    right = (j1 - u[:, :-1] * i0) / h  # weight of its right node ((x - x_k) / h)
    W[:, :-1] += left
    W[:, 1:] += right
    # far tails: rounding noise and subnormal numbers (slow in BLAS) below 1e-15 of a row's peak -> 0
    W[W < 1e-15 * W.max(axis=1, keepdims=True)] = 0.0
    return W


def _apply(A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``A @ W.T``, through a sparse matrix when most weights are zero (narrow bands)."""
    if W.size > 4096 and np.count_nonzero(W) < 0.25 * W.size:
        from scipy.sparse import csr_array

        return np.asarray(csr_array(W) @ A.T).T
    return A @ W.T


def resample_to_bands(
    lib_or_array: Any,
    src_wavelength: Any,
    dst_centres: Any,
    dst_fwhm: Any,
    *,
    min_support: float = 0.5,
    _stacklevel: int = 2,
) -> Any:
    """Convolve spectra to destination bands (Gaussian response from centres and FWHM, nm).

    ``lib_or_array`` is a :class:`~orbitml.spectra.SpectralLibrary` (then ``src_wavelength`` may be
    None: the library's own is used) or an array ``(..., n_src)``.  Returns the same kind: a library
    on the new bands (with ``fwhm`` set) or an array ``(..., n_dst)`` (float64, float32 input stays
    float32).  ``min_support`` in [0, 1]: least fraction of a band's in-range response weight that
    must fall on valid (non-NaN) source samples; below it the band is NaN for that spectrum.
    """
    from orbitml.spectra.library import SpectralLibrary

    lib = lib_or_array if isinstance(lib_or_array, SpectralLibrary) else None
    if lib is not None:
        X = lib.spectra
        src = lib.wavelength if src_wavelength is None else src_wavelength
    else:
        X = np.asarray(lib_or_array)
        if not np.issubdtype(X.dtype, np.floating):
            X = X.astype(np.float64)
        src = src_wavelength
    if src is None:
        raise OrbitmlInputError("resample_to_bands needs the source wavelengths for an array")
    x = _as_axis(src, "source wavelengths")
    if X.shape[-1] != x.size:
        raise OrbitmlInputError(f"spectra have {X.shape[-1]} bands but {x.size} source wavelengths were given")
    if not 0.0 <= min_support <= 1.0:
        raise OrbitmlInputError(f"min_support must lie in [0, 1], got {min_support}")
    order = np.argsort(x, kind="stable")
    if np.any(order != np.arange(x.size)):
        x, X = x[order], X[..., order]
    c = _as_axis(dst_centres, "band centres")
    f = np.broadcast_to(np.asarray(dst_fwhm, dtype=np.float64), c.shape).astype(np.float64)
    W = response_matrix(x, c, f)
    outside = (c < x[0]) | (c > x[-1])
    if outside.any():
        warnings.warn(
            f"{int(outside.sum())} of {c.size} destination bands lie outside the source range "
            f"{x[0]:.1f}-{x[-1]:.1f} nm; they are NaN",
            RuntimeWarning,
            stacklevel=_stacklevel,
        )
    total = W.sum(axis=1)
    bad_band = outside | (total <= 0)
    flat = X.reshape(-1, x.size).astype(np.float64, copy=False)
    valid = np.isfinite(flat)
    with np.errstate(invalid="ignore", divide="ignore"):
        if valid.all():
            out = _apply(flat, W) / total
        else:
            num = _apply(np.where(valid, flat, 0.0), W)
            den = _apply(valid.astype(np.float64), W)
            out = num / den
            out[(den <= 0) | (den < min_support * total)] = np.nan
    out[:, bad_band] = np.nan
    out = out.reshape(*X.shape[:-1], c.size)
    if X.dtype == np.float32:
        out = out.astype(np.float32)
    if lib is None:
        return out
    meta = dict(lib.metadata)
    meta["resampled_from"] = {"n_bands": int(x.size), "range_nm": [float(x[0]), float(x[-1])]}
    if np.any(np.diff(c) <= 0):
        raise OrbitmlInputError("destination band centres must be strictly ascending for a library")
    return SpectralLibrary(out, c, list(lib.names), f.copy(), meta)
