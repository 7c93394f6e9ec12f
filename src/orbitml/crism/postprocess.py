"""Post-processing of CRISM class maps: connected regions and their mean spectra.

A region is a connected group (8-connectivity) of confidently classified pixels of one class;
pixels are linked through a small dilation (default 2 pixels) used only to find the components,
so nearby patches of one mineral form one region.  A region is kept when it has at least 5
pixels spanning at least 2 detector columns (a single-column streak is more likely a detector
artefact than a mineral).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from orbitml.crism import classes as cc


@dataclass
class Region:
    id: int
    code: int
    n_pixels: int
    n_columns: int
    mean_confidence: float
    row: float
    col: float
    bbox: tuple[int, int, int, int]  # row0, col0, row1, col1 (exclusive)
    mean_ratioed: np.ndarray
    mean_unratioed: np.ndarray

    @property
    def name(self) -> str:
        return cc.name(self.code)

    @property
    def broad(self) -> str:
        return cc.broad_name(self.code)


def dilate_square(mask: np.ndarray, radius: int) -> np.ndarray:
    """``ndimage.binary_dilation(mask, np.ones((3, 3)), iterations=radius)`` (outside the image
    counts as False): ``radius`` dilations by the 3 x 3 square are one by the
    ``(2 radius + 1)``-square, done as two running maxima, one along each axis."""
    if radius <= 0:
        return mask.copy()
    size = 2 * radius + 1
    m = ndimage.maximum_filter1d(mask.view(np.uint8), size, axis=0, mode="constant", cval=0)
    return ndimage.maximum_filter1d(m, size, axis=1, mode="constant", cval=0).view(bool)


def region_means(region_map: np.ndarray, n_regions: int, *cubes: np.ndarray) -> list[np.ndarray]:
    """For each ``(rows, cols, bands)`` cube, the ``(n_regions, bands)`` float32 mean spectrum of
    each region ``1..n_regions`` of ``region_map``, ignoring NaNs band by band (``np.nanmean``
    over the region's pixels; NaN where a band has no finite value), accumulated in float64 in
    one pass over the pixels instead of a gather per region."""
    from orbitml.crism import _kernels

    ids = np.ascontiguousarray(region_map, dtype=np.int64).ravel()
    out = []
    for cube in cubes:
        flat = cube.reshape(ids.size, -1)
        if _kernels.AVAILABLE and flat.dtype in (np.float32, np.float64) and flat.flags.c_contiguous:
            sums = np.zeros((n_regions + 1, flat.shape[1]))
            counts = np.zeros((n_regions + 1, flat.shape[1]), np.int64)
            _kernels._region_sums(ids, flat, sums, counts)
            with np.errstate(invalid="ignore", divide="ignore"):
                out.append((sums[1:] / counts[1:]).astype(np.float32))
        else:
            means = np.full((n_regions, flat.shape[1]), np.nan, np.float32)
            for r in range(1, n_regions + 1):
                v = flat[ids == r]
                ok = ~np.isnan(v)
                with np.errstate(invalid="ignore", divide="ignore"):
                    means[r - 1] = np.where(ok, v, 0).sum(axis=0, dtype=np.float64) / ok.sum(axis=0)
            out.append(means)
    return out


def find_regions(class_map: np.ndarray, confidence: np.ndarray, ratioed: np.ndarray, unratioed: np.ndarray,
                 min_pixels: int = 5, min_columns: int = 2, dilation: int = 2,
                 skip=(cc.UNCLASSIFIED, cc.NEUTRAL, cc.UNKNOWN)) -> tuple[list[Region], np.ndarray]:
    """Regions of each class and a ``(rows, cols)`` int32 map of region ids (0 = none)."""
    class_map = np.asarray(class_map)
    h, w = class_map.shape
    region_map = np.zeros((h, w), dtype=np.int32)
    struct8 = np.ones((3, 3), bool)
    found: list[dict] = []
    for code in np.unique(class_map):
        if int(code) in skip or code < 0:
            continue
        mask = class_map == code
        linked = dilate_square(mask, dilation) if dilation else mask
        lab, n = ndimage.label(linked, structure=struct8)
        lab[~mask] = 0
        if n == 0:
            continue
        counts = np.bincount(lab.ravel(), minlength=n + 1)
        objs = ndimage.find_objects(lab)
        for r in range(1, n + 1):
            if counts[r] < min_pixels or objs[r - 1] is None:
                continue
            sl = objs[r - 1]
            sub = lab[sl] == r
            rr, cc_ = np.nonzero(sub)
            rr = rr + sl[0].start
            cc_ = cc_ + sl[1].start
            ncol = np.unique(cc_).size
            if ncol < min_columns:
                continue
            rid = len(found) + 1
            region_map[rr, cc_] = rid
            found.append(dict(
                id=rid, code=int(code), n_pixels=int(rr.size), n_columns=int(ncol),
                mean_confidence=float(np.nanmean(confidence[rr, cc_])), row=float(rr.mean()), col=float(cc_.mean()),
                bbox=(int(rr.min()), int(cc_.min()), int(rr.max()) + 1, int(cc_.max()) + 1)))
    mr, mu = region_means(region_map, len(found), np.asarray(ratioed), np.asarray(unratioed))
    regions = [Region(**f, mean_ratioed=mr[i], mean_unratioed=mu[i]) for i, f in enumerate(found)]
    return regions, region_map
