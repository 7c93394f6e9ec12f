"""Sub-pixel co-registration of a CRISM image (already on the CTX grid) to its CTX image.

A global shift by phase correlation (:func:`skimage.registration.phase_cross_correlation`, upsampled
for sub-pixel precision), then shifts in a grid of local windows, outliers rejected (few valid
pixels, or farther than ``max(0.5 px, 3 x 1.4826 MAD)`` from the median), and a smooth correction
field (an affine function of the position, least squares over the inliers; their median when
fewer than six inliers remain: an affine fit through fewer noisy windows follows the noise).
Convention: the estimated shift ``s(p)`` is what moves CRISM onto CTX:
``corrected(p) = crism(p - s(p))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

__all__ = ["ShiftField", "estimate_shift", "register", "apply_shift_field", "alignment_images"]


@dataclass
class ShiftField:
    """``s(row, col) = coef[k] . (1, row', col')`` per component k (dy, dx), with row', col' in [-1, 1]."""

    shape: tuple[int, int]
    coef: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))
    windows: list[dict] = field(default_factory=list)

    def at(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.shape
        rp = 2 * np.asarray(rows, float) / max(h - 1, 1) - 1
        cp = 2 * np.asarray(cols, float) / max(w - 1, 1) - 1
        return tuple(self.coef[k, 0] + self.coef[k, 1] * rp + self.coef[k, 2] * cp for k in range(2))

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        rr, cc = np.mgrid[0: self.shape[0], 0: self.shape[1]]
        return self.at(rr, cc)


def _prepare(img: np.ndarray, valid: np.ndarray) -> np.ndarray:
    from skimage.filters import window

    out = np.asarray(img, dtype=np.float64).copy()
    if valid.any():
        v = out[valid]
        mu, sd = v.mean(), v.std()
        out = (out - mu) / (sd if sd > 0 else 1.0)
    out[~valid] = 0.0
    return out * window("hann", out.shape)


def estimate_shift(reference: np.ndarray, moving: np.ndarray, valid: np.ndarray,
                   upsample: int = 20) -> tuple[np.ndarray, float]:
    """``(shift (dy, dx), error)`` that registers ``moving`` onto ``reference`` (both 2-D, same grid)."""
    from skimage.registration import phase_cross_correlation

    a, b = _prepare(reference, valid), _prepare(moving, valid)
    shift, error, _ = phase_cross_correlation(a, b, upsample_factor=upsample, normalization=None)
    return np.asarray(shift, dtype=float), float(error)


def apply_shift_field(bands: np.ndarray, valid: np.ndarray, sfield: ShiftField) -> tuple[np.ndarray, np.ndarray]:
    """``(bands, valid)`` resampled so that ``out(p) = in(p - s(p))`` (bilinear; a pixel whose stencil
    touches an invalid one becomes invalid)."""
    h, w = valid.shape
    rr, cc = np.mgrid[0:h, 0:w].astype(float)
    sy, sx = sfield.at(rr, cc)
    coords = [rr - sy, cc - sx]
    vout = ndi.map_coordinates(valid.astype(np.float64), coords, order=1, mode="constant", cval=0.0) > 0.999
    out = np.empty(bands.shape, dtype=np.float32)
    for i, b in enumerate(bands):
        filled = np.where(valid, b, 0.0)
        out[i] = ndi.map_coordinates(filled.astype(np.float64), coords, order=1, mode="constant", cval=0.0)
    out[:, ~vout] = np.nan
    return out, vout


def alignment_images(ctx: np.ndarray, bands: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Reference (CTX box-blurred to the CRISM pixel size) and moving image: the linear combination of
    the CRISM bands that best matches the reference (least squares over valid pixels), a synthetic
    CTX-like band, so that units whose colour differs from their brightness do not bias the shifts."""
    size = max(1, int(round(factor)))
    ref = ndi.uniform_filter(np.nan_to_num(ctx.astype(np.float64)), size=size, mode="mirror")
    ok = np.isfinite(bands).all(axis=0)
    if ok.sum() < bands.shape[0] + 2:
        return ref, np.zeros_like(ref)
    X = np.column_stack([np.ones(int(ok.sum()))] + [b[ok].astype(np.float64) for b in bands])
    coef, *_ = np.linalg.lstsq(X, ref[ok], rcond=None)
    mov = np.zeros_like(ref)
    mov[ok] = X @ coef
    return ref, mov


def _robust_inliers(shifts: np.ndarray) -> np.ndarray:
    med = np.median(shifts, axis=0)
    dev = np.linalg.norm(shifts - med, axis=1)
    mad = 1.4826 * np.median(dev)
    return dev <= max(0.5, 3 * mad)


def register(reference: np.ndarray, moving: np.ndarray, valid: np.ndarray, n_windows: int = 3,
             min_window: int = 40, upsample: int = 20, min_valid: float = 0.5) -> ShiftField:
    """Global then local shifts (see module docstring) as one smooth :class:`ShiftField`."""
    h, w = valid.shape
    g, _ = estimate_shift(reference, moving, valid, upsample)
    sfield = ShiftField((h, w))
    sfield.coef[:, 0] = g
    n = int(min(n_windows, h // min_window, w // min_window))
    if n < 2:
        return sfield
    # local shifts of the globally corrected image
    sub = ShiftField((h, w), coef=sfield.coef.copy())
    mov_g, val_g = apply_shift_field(moving[None], valid, sub)
    mov_g = np.nan_to_num(mov_g[0])
    rs, cs = np.linspace(0, h, n + 1).astype(int), np.linspace(0, w, n + 1).astype(int)
    wins, shifts = [], []
    for i in range(n):
        for j in range(n):
            r0, r1, c0, c1 = rs[i], rs[i + 1], cs[j], cs[j + 1]
            v = val_g[r0:r1, c0:c1]
            rec = {"rows": [int(r0), int(r1)], "cols": [int(c0), int(c1)], "valid": float(v.mean()), "used": False}
            wins.append(rec)
            if v.mean() < min_valid:
                continue
            s, err = estimate_shift(reference[r0:r1, c0:c1], mov_g[r0:r1, c0:c1], v, upsample)
            rec.update(dy=float(s[0]), dx=float(s[1]), error=err)
            if np.all(np.abs(s) < min(r1 - r0, c1 - c0) / 4):
                shifts.append((s, (r0 + r1 - 1) / 2, (c0 + c1 - 1) / 2, rec))
    if shifts:
        arr = np.array([s for s, *_ in shifts])
        keep = _robust_inliers(arr)
        for (_, _, _, rec), k in zip(shifts, keep, strict=True):
            rec["used"] = bool(k)
        pts = [(s, r, c) for (s, r, c, _), k in zip(shifts, keep, strict=True) if k]
        if len(pts) >= 6:
            rp = np.array([2 * r / max(h - 1, 1) - 1 for _, r, _ in pts])
            cp = np.array([2 * c / max(w - 1, 1) - 1 for _, _, c in pts])
            A = np.column_stack([np.ones_like(rp), rp, cp])
            for k in range(2):
                y = np.array([s[k] for s, _, _ in pts])
                coef, *_ = np.linalg.lstsq(A, y, rcond=None)
                if np.linalg.matrix_rank(A) < 3:
                    coef = np.array([y.mean(), 0.0, 0.0])
                sfield.coef[k] += coef
        elif pts:
            sfield.coef[:, 0] += np.median(np.array([s for s, _, _ in pts]), axis=0)
    sfield.windows = wins
    return sfield
