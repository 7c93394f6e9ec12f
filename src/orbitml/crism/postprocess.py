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


def find_regions(class_map: np.ndarray, confidence: np.ndarray, ratioed: np.ndarray, unratioed: np.ndarray,
                 min_pixels: int = 5, min_columns: int = 2, dilation: int = 2,
                 skip=(cc.UNCLASSIFIED, cc.NEUTRAL, cc.UNKNOWN)) -> tuple[list[Region], np.ndarray]:
    """Regions of each class and a ``(rows, cols)`` int32 map of region ids (0 = none)."""
    class_map = np.asarray(class_map)
    h, w = class_map.shape
    region_map = np.zeros((h, w), dtype=np.int32)
    struct8 = np.ones((3, 3), bool)
    regions: list[Region] = []
    for code in np.unique(class_map):
        if int(code) in skip or code < 0:
            continue
        mask = class_map == code
        linked = ndimage.binary_dilation(mask, structure=struct8, iterations=dilation) if dilation else mask
        lab, n = ndimage.label(linked, structure=struct8)
        lab = np.where(mask, lab, 0)
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
            rid = len(regions) + 1
            region_map[rr, cc_] = rid
            regions.append(Region(
                id=rid, code=int(code), n_pixels=int(rr.size), n_columns=int(ncol),
                mean_confidence=float(np.nanmean(confidence[rr, cc_])), row=float(rr.mean()), col=float(cc_.mean()),
                bbox=(int(rr.min()), int(cc_.min()), int(rr.max()) + 1, int(cc_.max()) + 1),
                mean_ratioed=np.nanmean(ratioed[rr, cc_], axis=0).astype(np.float32),
                mean_unratioed=np.nanmean(unratioed[rr, cc_], axis=0).astype(np.float32)))
    return regions, region_map
