"""Fixed-size tiles for scanning workflows (e.g. HiRISE ice search), with a black/nodata policy.

Tiles start every ``size - overlap`` pixels; the last tile of a row or column is *shifted back*
to end at the image edge, so the right and bottom remainders are always covered by full-size
tiles of real pixels (no padding, nothing dropped).  Each tile records its pixel window and its
footprint in the scene's CRS.  The index is written as CSV or GeoJSON; GeoJSON footprints stay in
the scene CRS (Mars stays Mars, no reprojection to EPSG:4326): the CRS goes into the legacy
``crs`` member (``{"type": "name", "properties": {"name": <EPSG URN or WKT>}}``) and a
``crs_wkt`` member.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.io.atomic import atomic_path
from orbitml.tiling.sources import Source, invalid_mask, open_source

__all__ = ["ChunkTile", "TileIndex", "TileChunker", "chunk_offsets"]


MAX_WINDOW_PX = 8192  # widest window TileIndex.batches reads at once


def chunk_offsets(n: int, size: int, step: int) -> list[int]:
    """Start offsets covering ``[0, n)`` with tiles of ``size``; the last one ends exactly at ``n``."""
    offs = list(range(0, n - size + 1, step))
    if offs[-1] + size < n:
        offs.append(n - size)
    return offs


@dataclass
class ChunkTile:
    index: int
    i: int
    j: int
    row: int
    col: int
    height: int
    width: int
    left: float
    bottom: float
    right: float
    top: float
    black_fraction: float
    kept: bool

    def footprint(self, transform) -> list[list[float]]:
        """Closed ring of the tile's outer corners in map coordinates."""
        pts = [(self.col, self.row), (self.col + self.width, self.row),
               (self.col + self.width, self.row + self.height), (self.col, self.row + self.height)]
        ring = [list(transform * p) for p in pts]
        return ring + [ring[0]]


class TileIndex:
    """The tiles of one image, their windows, footprints and black fractions."""

    def __init__(self, tiles: list[ChunkTile], source: Source, size: int, overlap: int, policy: Any):
        self.tiles, self.size, self.overlap, self.policy = tiles, size, overlap, policy
        self.source = source
        self.crs, self.transform, self.name = source.crs, source.transform, source.name
        self.shape = (source.height, source.width)

    @property
    def kept(self) -> list[ChunkTile]:
        return [t for t in self.tiles if t.kept]

    def __len__(self) -> int:
        return len(self.tiles)

    def read(self, tile: ChunkTile) -> np.ndarray:
        """Pixels ``(C, size, size)`` of one tile, read by window."""
        return self.source.read(tile.row, tile.row + tile.height, tile.col, tile.col + tile.width)

    def batches(self, batch_size: int = 16, kept_only: bool = True) -> Iterator[tuple[list[ChunkTile], np.ndarray]]:
        """``(tiles, pixels (N, C, size, size))`` in index order, reading one window of a tile row at a time
        (the row's height, at most :data:`MAX_WINDOW_PX` wide)."""
        todo = [t for t in self.tiles if t.kept or not kept_only]
        buf: list[ChunkTile] = []
        strip_row, strip, w0, w1 = None, None, 0, 0
        arrays: list[np.ndarray] = []
        for t in todo:
            # one window of a tile row, at most MAX_WINDOW_PX wide: memory does not grow with the image width
            if t.row != strip_row or t.col < w0 or t.col + t.width > w1:
                w0 = t.col
                w1 = min(self.source.width, max(t.col + t.width, t.col + MAX_WINDOW_PX))
                strip_row, strip = t.row, self.source.read(t.row, t.row + t.height, w0, w1)
            buf.append(t)
            arrays.append(strip[:, :, t.col - w0: t.col - w0 + t.width])
            if len(buf) == batch_size:
                yield buf, np.stack(arrays)
                buf, arrays = [], []
        if buf:
            yield buf, np.stack(arrays)

    def to_records(self) -> list[dict[str, Any]]:
        return [asdict(t) for t in self.tiles]

    def to_csv(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        with atomic_path(path, overwrite) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            wr = csv.DictWriter(fh, fieldnames=list(ChunkTile.__dataclass_fields__))
            wr.writeheader()
            for rec in self.to_records():
                wr.writerow(rec)
        return Path(path)

    def _crs_member(self) -> tuple[dict | None, str | None]:
        if self.crs is None:
            return None, None
        wkt = self.crs.to_wkt()
        epsg = self.crs.to_epsg()
        name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else wkt
        return {"type": "name", "properties": {"name": name}}, wkt

    def to_geojson(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        feats = []
        for t in self.tiles:
            props = {k: (None if isinstance(v, float) and math.isnan(v) else v)  # NaN is not JSON: null
                     for k, v in asdict(t).items() if k not in ("left", "bottom", "right", "top")}
            feats.append({"type": "Feature", "id": t.index, "properties": props,
                          "geometry": {"type": "Polygon", "coordinates": [t.footprint(self.transform)]}})
        doc: dict[str, Any] = {"type": "FeatureCollection", "name": self.name}
        crs, wkt = self._crs_member()
        if crs is not None:
            doc["crs"] = crs
            doc["crs_wkt"] = wkt
        doc["features"] = feats
        with atomic_path(path, overwrite) as tmp:
            Path(tmp).write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
        return Path(path)

    def write(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """CSV or GeoJSON, chosen by the suffix (.csv, .geojson/.json)."""
        suf = Path(path).suffix.lower()
        if suf == ".csv":
            return self.to_csv(path, overwrite)
        if suf in (".geojson", ".json"):
            return self.to_geojson(path, overwrite)
        raise OrbitmlInputError("tile index must end in .csv or .geojson", path)


class TileChunker:
    """Fixed tiles of ``size`` px with ``overlap`` px shared by neighbours.

    ``black_policy``: None keeps every tile; a number ``f`` skips tiles whose fraction of black
    pixels exceeds ``f`` (``0.0``: any black pixel); ``("center", c)`` skips tiles with any black
    pixel in the central ``c`` fraction of the tile (``c=0.5``: the middle half in each direction).
    A pixel is *black* when it is nodata/non-finite or equals ``black_value`` in every band.
    """

    def __init__(self, size: int = 1024, overlap: int = 0, black_policy: Any = None, black_value: float = 0):
        if size < 1:
            raise OrbitmlInputError(f"tile size must be positive, got {size}")
        if not 0 <= overlap < size:
            raise OrbitmlInputError(f"overlap must be in [0, size) = [0, {size}), got {overlap}")
        if black_policy is not None and not isinstance(black_policy, int | float):
            kind, frac = black_policy
            if kind != "center" or not 0 < float(frac) <= 1:
                raise OrbitmlInputError(f"black_policy must be a fraction or ('center', c) with 0 < c <= 1, "
                                        f"got {black_policy!r}")
        elif black_policy is not None and not 0 <= black_policy <= 1:
            raise OrbitmlInputError(f"black fraction must be in [0, 1], got {black_policy}")
        self.size, self.overlap, self.black_policy, self.black_value = size, overlap, black_policy, black_value

    def keep(self, black: np.ndarray) -> tuple[float, bool]:
        """``(black fraction, kept)`` of one tile's ``(size, size)`` black mask under the policy."""
        frac = float(black.mean())
        pol = self.black_policy
        if pol is None:
            return frac, True
        if isinstance(pol, int | float):
            return frac, frac <= pol
        c = float(pol[1])
        n = black.shape[0]
        lo = int(round(n * (1 - c) / 2))
        hi = max(n - lo, lo + 1)
        return frac, not black[lo:hi, lo:hi].any()

    def black_mask(self, block: np.ndarray, nodata=None) -> np.ndarray:
        """Black pixels of a ``(C, h, w)`` block: nodata / non-finite, or ``black_value`` in every band."""
        black = invalid_mask(block, nodata)
        black |= (block == self.black_value).all(axis=0)
        return black

    def tiles(self, scene_or_path: Any, scan: bool = True, max_block_bytes: int = 64 * 2**20) -> TileIndex:
        """Index the image's tiles, reading it by windows of at most ``max_block_bytes``.

        ``scan=False`` (allowed only without a black policy) reads no pixels at all: the index then
        needs only the image's shape and transform, and ``black_fraction`` is NaN.
        """
        src = open_source(scene_or_path)
        s = self.size
        if s > src.height or s > src.width:
            raise OrbitmlInputError(f"tile size {s} px is larger than the image ({src.height} x {src.width} px)",
                                    getattr(src, "path", None))
        if not scan and self.black_policy is not None:
            raise OrbitmlInputError("a black/nodata policy needs the pixels: scan=True")
        step = s - self.overlap
        rows, cols = chunk_offsets(src.height, s, step), chunk_offsets(src.width, s, step)
        from orbitml.tiling.windows import window_bounds

        # column groups whose window (s rows x span columns x bands) stays under the byte budget
        per_col = s * max(src.count, 1) * max(np.dtype(src.dtype).itemsize, 1)
        span_max = max(s, int(max_block_bytes // per_col))
        groups: list[list[int]] = []
        for j, c in enumerate(cols):
            if groups and c + s - cols[groups[-1][0]] <= span_max:
                groups[-1].append(j)
            else:
                groups.append([j])
        out: list[ChunkTile] = []
        for i, r in enumerate(rows):
            row_tiles: dict[int, tuple[float, bool]] = {}
            for g in groups if scan else []:
                c0, c1 = cols[g[0]], cols[g[-1]] + s
                block = src.read(r, r + s, c0, c1)
                black = self.black_mask(block, src.nodata)
                del block
                for j in g:
                    row_tiles[j] = self.keep(black[:, cols[j] - c0: cols[j] - c0 + s])
            for j, c in enumerate(cols):
                frac, keep = row_tiles.get(j, (float("nan"), True))
                left, bottom, right, top = window_bounds(src.transform, r, c, s, s)
                out.append(ChunkTile(len(out), i, j, r, c, s, s, left, bottom, right, top, frac, keep))
        return TileIndex(out, src, s, self.overlap, self.black_policy)
