"""Built-in tile operators: nodata-aware Gaussian low-pass and median filters.

They are picklable callables (``(N, C, t, t) -> (N, C, t, t)``) with a ``halo`` attribute: the
number of edge pixels whose value depends on pixels outside the tile.  Run them with
``predict(..., margin=op.halo, fill_value=nan)`` and the tiled result equals the whole-image filter
(with mirror boundaries, as the tiles are reflection-padded) everywhere.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

__all__ = ["GaussianSmooth", "MedianSmooth", "smooth_image"]


class GaussianSmooth:
    """Gaussian low-pass of standard deviation ``sigma`` px per band, normalised over valid pixels.

    NaN inputs (nodata, with ``fill_value=nan``) are left out: ``G(x * v) / G(v)`` with ``v`` the
    validity mask (normalised convolution), so nodata does not darken its neighbours.
    """

    def __init__(self, sigma: float = 2.0, truncate: float = 4.0):
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma, self.truncate = float(sigma), float(truncate)
        self.halo = int(math.floor(self.truncate * self.sigma + 0.5))

    def _one(self, img: np.ndarray) -> np.ndarray:
        ok = np.isfinite(img)
        kw = dict(sigma=self.sigma, truncate=self.truncate, mode="mirror")
        if ok.all():
            return ndimage.gaussian_filter(img, **kw)
        num = ndimage.gaussian_filter(np.where(ok, img, 0.0), **kw)
        den = ndimage.gaussian_filter(ok.astype(img.dtype), **kw)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan).astype(img.dtype)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = np.empty_like(batch)
        for n in range(batch.shape[0]):
            for c in range(batch.shape[1]):
                out[n, c] = self._one(batch[n, c])
        return out

    def __repr__(self) -> str:
        return f"GaussianSmooth(sigma={self.sigma}, truncate={self.truncate})"


class MedianSmooth:
    """Median filter over a ``size x size`` window per band (NaN-free input expected)."""

    def __init__(self, size: int = 5):
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size = int(size)
        self.halo = self.size // 2

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return ndimage.median_filter(batch, size=(1, 1, self.size, self.size), mode="mirror")

    def __repr__(self) -> str:
        return f"MedianSmooth(size={self.size})"


def smooth_image(image: np.ndarray, op) -> np.ndarray:
    """The whole-image reference: apply ``op`` to a ``(C, H, W)`` image in one piece."""
    return op(image[None])[0]
