"""Labelled scene pixels as extra training data, held out by spatial blocks.

A label raster on the scene's grid names the class of some pixels: 0 (or its nodata) is
unlabelled, ``1..K`` are the manifest's classes in their order, or, when the raster carries a
class table (``CLASS_NAMES``, as :func:`orbitml.io.classmap.write_class_map` writes it), its codes
are matched to the manifest's classes by name.

Validation is by spatial blocks, never by random pixels: the scene is cut into ``block x block``
squares, whole squares go to validation (seeded) until they hold ``val_fraction`` of the labelled
pixels, and a training pixel whose ``patch x patch`` neighbourhood reaches into a validation
square is dropped (its patch would show the network validation pixels).  Each pixel becomes one
patch of the projected scene (reflected at the edges like the mapping), labelled with its class;
its abundances are unknown, so the abundance loss skips it (NaN targets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.tiling.windows import reflect_index

__all__ = ["read_labels", "block_split", "scene_patches", "LabelSplit"]


def read_labels(path, scene, classes: list[str]) -> np.ndarray:
    """``(H, W)`` int16 codes: 0 unlabelled, ``1..K`` the manifest's classes (by name when the raster has a table)."""
    from orbitml.io.classmap import UNCLASSIFIED_NAMES, read_class_table
    from orbitml.minmap.train import open_on_grid

    lab = open_on_grid(path, scene, "label raster")  # size, grid and CRS checked as for a mask
    vals = np.asarray(lab.values[0])
    if not np.issubdtype(vals.dtype, np.integer):
        finite = np.isfinite(vals)
        if np.any(finite & (vals != np.round(vals))):
            raise OrbitmlInputError("label raster holds non-integer values; it needs class codes", path)
        vals = np.where(finite, vals, 0)
    vals = vals.astype(np.int64)
    nd = lab.rio.nodata
    if nd is not None and np.isfinite(nd):
        vals[vals == int(nd)] = 0
    if vals.min(initial=0) < 0:
        raise OrbitmlInputError(f"label raster holds negative codes ({int(vals.min())})", path)
    K = len(classes)
    try:
        table = read_class_table(path)
    except Exception:  # noqa: BLE001 - a raster without a readable table is read by its codes
        table = None
    if table is not None:
        lookup = {c.lower(): i + 1 for i, c in enumerate(classes)}
        remap = np.zeros(max(len(table.names), int(vals.max(initial=0)) + 1), np.int64)
        for code, name in enumerate(table.names):
            key = name.strip().lower()
            if key in UNCLASSIFIED_NAMES:
                continue
            if key not in lookup:
                if np.any(vals == code):
                    raise OrbitmlInputError(f"label raster class {name!r} (code {code}) is not one of the "
                                            f"manifest's classes ({', '.join(classes)})", path)
                continue
            remap[code] = lookup[key]
        if int(vals.max(initial=0)) >= len(table.names):
            raise OrbitmlInputError(f"label raster codes up to {int(vals.max())} but its class table has "
                                    f"{len(table.names)} names", path)
        vals = remap[vals]
    elif int(vals.max(initial=0)) > K:
        raise OrbitmlInputError(f"label raster codes up to {int(vals.max())} but the manifest has {K} classes "
                                "(codes 1..K in the manifest's class order, 0 = unlabelled)", path)
    if not np.any(vals > 0):
        raise OrbitmlInputError("label raster labels no pixel (all 0 / nodata)", path)
    return vals.astype(np.int16)


@dataclass
class LabelSplit:
    train: np.ndarray  # (n, 2) row, col
    val: np.ndarray  # (m, 2)
    val_blocks: int
    n_blocks: int
    dropped_near_val: int


def block_split(labels: np.ndarray, block: int, val_fraction: float, halo: int, seed: int,
                max_per_class: int | None = None, path: Any = None) -> LabelSplit:
    """Spatial-block train/validation split of the labelled pixels (see the module docstring)."""
    from scipy.ndimage import maximum_filter

    H, W = labels.shape
    yy, xx = np.nonzero(labels > 0)
    bid = (yy // block) * (-(-W // block)) + xx // block
    blocks, counts = np.unique(bid, return_counts=True)
    if blocks.size < 2:
        raise OrbitmlInputError(f"the labelled pixels lie in one {block} x {block} block: a spatial validation "
                                "split needs labels in at least two blocks (lower labels.block)", path)
    rng = np.random.default_rng(seed)
    order = rng.permutation(blocks.size)
    want = val_fraction * yy.size
    take, got = [], 0
    for i in order:
        if got >= want or len(take) == blocks.size - 1:
            break
        take.append(blocks[i])
        got += counts[i]
    val_ids = np.asarray(take)
    in_val = np.isin(bid, val_ids)
    grid = np.zeros((-(-H // block), -(-W // block)), bool)
    grid.flat[val_ids] = True
    val_area = np.repeat(np.repeat(grid, block, 0), block, 1)[:H, :W]
    near = maximum_filter(val_area, size=2 * halo + 1, mode="constant", cval=False) if halo > 0 else val_area
    tr = ~in_val & ~near[yy, xx]
    dropped = int((~in_val & near[yy, xx]).sum())
    train, val = np.stack([yy[tr], xx[tr]], 1), np.stack([yy[in_val], xx[in_val]], 1)
    if train.shape[0] == 0:
        raise OrbitmlInputError("no labelled training pixel is left outside the validation blocks and their "
                                f"{halo}-pixel margin; label more of the scene or lower labels.block", path)
    if max_per_class is not None:
        train = _cap(train, labels, max_per_class, rng)
        val = _cap(val, labels, max_per_class, rng)
    return LabelSplit(train, val, int(val_ids.size), int(blocks.size), dropped)


def _cap(yx: np.ndarray, labels: np.ndarray, n: int, rng) -> np.ndarray:
    cls = labels[yx[:, 0], yx[:, 1]]
    keep = []
    for c in np.unique(cls):
        idx = np.flatnonzero(cls == c)
        keep.append(idx if idx.size <= n else np.sort(rng.choice(idx, n, replace=False)))
    return yx[np.sort(np.concatenate(keep))] if keep else yx


def scene_patches(scene, band_idx: np.ndarray, W: np.ndarray, b: np.ndarray, yx: np.ndarray, labels: np.ndarray,
                  patch: int, mask: np.ndarray | None, n_classes: int, budget_bytes: float = 128e6
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X (n, R, patch, patch), class (n,) 0-based, abundances (n, K) NaN)`` for labelled pixels ``yx``.

    The scene is read in strips of rows around the pixels (never whole) and projected as in
    mapping: invalid pixels (NaN, nodata, outside the mask) become 0 in the network inputs.  A
    labelled pixel that is itself invalid is dropped.
    """
    from types import SimpleNamespace

    from orbitml.minmap.mapping import project_block

    # the mapping's own projection of a block (invalid pixels -> 0), with the projection being trained
    proj = SimpleNamespace(project=lambda X: (np.asarray(X, np.float64) @ W + b).astype(np.float32))
    H, Wd = scene.sizes["y"], scene.sizes["x"]
    h = patch // 2
    R = W.shape[1]
    data, nodata = scene.data, scene.rio.nodata
    order = np.argsort(yx[:, 0], kind="stable")
    yx = yx[order]
    rows = max(1, int(budget_bytes // max(1, band_idx.size * Wd * 8)) - 2 * h)
    cols = reflect_index(np.arange(-h, Wd + h), Wd)
    X = np.empty((yx.shape[0], R, patch, patch), np.float32)
    keep = np.zeros(yx.shape[0], bool)
    s = 0
    while s < yx.shape[0]:  # strips of rows, each read once
        r0 = int(yx[s, 0])
        r_hi = min(H, r0 + rows)
        e = int(np.searchsorted(yx[:, 0], r_hi, side="left"))
        need = reflect_index(np.arange(r0 - h, r_hi + h), H)
        lo, hi = int(need.min()), int(need.max()) + 1
        z, ok = project_block(proj, np.asarray(data[band_idx, lo:hi, :], dtype=np.float32), nodata,
                              None if mask is None else mask[lo:hi])
        Z = np.moveaxis(z, 0, -1)[need - lo][:, cols]  # (rows + 2h, W + 2h, R), reflected like the mapping
        okp = ok[need - lo][:, cols]
        for i in range(s, e):
            y, x = int(yx[i, 0]) - r0, int(yx[i, 1])
            if okp[y + h, x + h]:
                X[i] = np.moveaxis(Z[y:y + patch, x:x + patch], -1, 0)
                keep[i] = True
        s = e
    yx, X = yx[keep], X[keep]
    y = labels[yx[:, 0], yx[:, 1]].astype(np.int64) - 1
    ab = np.full((yx.shape[0], n_classes), np.nan, np.float32)
    return X, y, ab
