"""Tile grids and per-tile blending weights.

Conventions
-----------
* Offsets are in pixels of the image, row then column; a tile may start before row/column 0 or end
  after the last one: those pixels are filled by *reflection* about the first/last pixel centre
  (numpy ``mode="reflect"``, scipy ``mode="mirror"``: ``... c b | a b c ...``), never by zeros.
* :func:`grid` places tiles of size ``tile`` every ``stride`` pixels starting at ``-pad`` with
  ``pad = (tile - stride) // 2`` (half the overlap), and adds tiles until the last one reaches at
  least ``pad`` pixels past the end, so border pixels see as much context as interior ones.
* Weights use pixel centres: pixel ``i`` of a tile of height ``h`` sits at ``r = i + 0.5``, so
  ``r' = 2 r / h - 1`` runs over ``(-1, 1)`` symmetrically and no weight is exactly zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine

from orbitml.errors import OrbitmlInputError

__all__ = ["Tile", "TileGrid", "grid", "weights", "reflect_index", "WEIGHT_KINDS", "check_tiling"]

WEIGHT_KINDS = ("uniform", "gaussian", "hann")


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Map any integer indices into ``[0, n)`` by reflection about the edge pixel centres (period 2n-2)."""
    idx = np.asarray(idx, dtype=np.int64)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * n - 2
    m = np.mod(idx, period)
    return np.where(m < n, m, period - m)


def window_bounds(transform: Affine, row: int, col: int, height: int, width: int) -> tuple[float, float, float, float]:
    """Map bounds ``(left, bottom, right, top)`` of a pixel window (its outer pixel edges)."""
    xs, ys = [], []
    for c, r in ((col, row), (col + width, row), (col, row + height), (col + width, row + height)):
        x, y = transform * (c, r)
        xs.append(x)
        ys.append(y)
    return (min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True)
class Tile:
    """One tile: grid index ``(i, j)``, pixel offsets ``(row, col)`` (may be negative), size, map bounds."""

    i: int
    j: int
    row: int
    col: int
    height: int
    width: int
    bounds: tuple[float, float, float, float]

    @property
    def window(self):
        """The tile as a :class:`rasterio.windows.Window` (may extend past the image)."""
        from rasterio.windows import Window

        return Window(self.col, self.row, self.width, self.height)

    def inner(self, height: int, width: int) -> tuple[slice, slice]:
        """Row and column slices of the part of the tile inside an image of ``height x width``."""
        return (slice(max(self.row, 0), min(self.row + self.height, height)),
                slice(max(self.col, 0), min(self.col + self.width, width)))


def _offsets(n: int, tile: int, stride: int, pad: int) -> list[int]:
    count = max(1, math.ceil((n + 2 * pad - tile) / stride) + 1)
    return [-pad + k * stride for k in range(count)]


def check_tiling(height: int, width: int, tile: int, stride: int | None, overlap: int | None,
                 margin: int = 0, what: str = "image") -> int:
    """Validate tile parameters and return the stride (user mistakes raise OrbitmlInputError)."""
    tile = int(tile)
    if tile < 1:
        raise OrbitmlInputError(f"tile must be a positive number of pixels, got {tile}")
    if tile > height or tile > width:
        raise OrbitmlInputError(f"tile {tile} px is larger than the {what} ({height} x {width} px); "
                                "choose a smaller tile")
    if stride is not None and overlap is not None and int(stride) != tile - int(overlap):
        raise OrbitmlInputError(f"stride {stride} and overlap {overlap} disagree for tile {tile} "
                                "(stride = tile - overlap); give only one")
    if stride is None:
        stride = tile - int(overlap or 0)
    stride = int(stride)
    if stride > tile:
        raise OrbitmlInputError(f"stride {stride} is larger than the tile {tile}: pixels would be skipped")
    if stride < 1:
        raise OrbitmlInputError(f"stride must be at least 1 pixel (overlap < tile), got {stride}")
    if margin < 0 or tile - 2 * margin < stride:
        raise OrbitmlInputError(f"margin {margin} leaves a tile core of {tile - 2 * margin} px, smaller than "
                                f"the stride {stride}: pixels would be left uncovered")
    return stride


class TileGrid(Sequence[Tile]):
    """The tiles of :func:`grid`, row-major; ``row_offsets``/``col_offsets`` give the grid lines."""

    def __init__(self, height: int, width: int, tile: int, stride: int, transform: Affine | None = None):
        self.height, self.width, self.tile, self.stride = int(height), int(width), int(tile), int(stride)
        self.pad = (self.tile - self.stride) // 2
        self.transform = transform if transform is not None else Affine.identity()
        self.row_offsets = _offsets(self.height, self.tile, self.stride, self.pad)
        self.col_offsets = _offsets(self.width, self.tile, self.stride, self.pad)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.row_offsets), len(self.col_offsets)

    def __len__(self) -> int:
        return len(self.row_offsets) * len(self.col_offsets)

    def _tile(self, i: int, j: int) -> Tile:
        r, c = self.row_offsets[i], self.col_offsets[j]
        return Tile(i, j, r, c, self.tile, self.tile, window_bounds(self.transform, r, c, self.tile, self.tile))

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, slice):
            return [self[x] for x in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        ncol = len(self.col_offsets)
        return self._tile(k // ncol, k % ncol)

    def __iter__(self) -> Iterator[Tile]:
        for i in range(len(self.row_offsets)):
            for j in range(len(self.col_offsets)):
                yield self._tile(i, j)

    def __repr__(self) -> str:
        return (f"TileGrid({self.height}x{self.width}, tile={self.tile}, stride={self.stride}, pad={self.pad}, "
                f"{self.shape[0]}x{self.shape[1]} tiles)")


def grid(height: int, width: int, tile: int, stride: int | None = None, overlap: int | None = None,
         transform: Affine | None = None) -> TileGrid:
    """Square tiles of ``tile`` px every ``stride`` px (or ``tile - overlap``; default: no overlap).

    Every tile knows its pixel window and its map bounds under ``transform`` (pixel grid if None).
    Tiles reaching past the image are filled by reflection when read (see the module notes).
    """
    stride = check_tiling(height, width, tile, stride, overlap)
    return TileGrid(height, width, tile, stride, transform)


def weights(kind: str | np.ndarray, h: int, w: int | None = None, dtype=np.float64) -> np.ndarray:
    """Blending weights of one ``h x w`` tile, positive everywhere, peaking at the centre.

    * ``uniform``: ones;
    * ``gaussian``: ``exp(-(r'^2 + c'^2))``, ``r' = 2r/h - 1``, ``c' = 2c/w - 1`` (Stepcenkov et al. 2022,
      Eq. 3) with ``r = i + 0.5``, ``c = j + 0.5`` (pixel centres): ``exp(-2)`` near the corners;
    * ``hann``: ``sin^2(pi r / h) * sin^2(pi c / w)`` at the same pixel centres.

    An array is returned as float after a shape check (custom weights).
    """
    w = h if w is None else w
    if isinstance(kind, np.ndarray):
        if kind.shape != (h, w):
            raise OrbitmlInputError(f"custom weights have shape {kind.shape}, expected {(h, w)}")
        if not np.all(np.isfinite(kind)) or np.any(kind <= 0):
            raise OrbitmlInputError("custom weights must be finite and positive")
        return kind.astype(dtype)
    # r' = 2 (i + 0.5) / h - 1 written with an integer numerator, so the weights are exactly symmetric
    rp = (2 * np.arange(h) + 1 - h) / h
    cp = (2 * np.arange(w) + 1 - w) / w
    if kind == "uniform":
        out = np.ones((h, w))
    elif kind == "gaussian":
        out = np.exp(-(rp[:, None] ** 2 + cp[None, :] ** 2))
    elif kind == "hann":  # sin^2(pi r / h) = cos^2(pi r' / 2)
        out = np.cos(0.5 * np.pi * rp)[:, None] ** 2 * np.cos(0.5 * np.pi * cp)[None, :] ** 2
    else:
        raise OrbitmlInputError(f"unknown weights {kind!r}; choose one of {', '.join(WEIGHT_KINDS)}")
    return out.astype(dtype)
