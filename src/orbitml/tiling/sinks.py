"""Where finished output rows go: an in-memory array or a tiled GeoTIFF written block row by block row."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from orbitml.scene import make_scene
from orbitml.tiling.sources import Source

__all__ = ["MemorySink", "GeoTiffSink", "BLOCK"]

BLOCK = 256  # GeoTIFF tile size (pixels); row bands are staged to whole block rows


class MemorySink:
    """Collects rows into a numpy array; :meth:`scene` wraps it with the input's georeferencing."""

    def __init__(self, source: Source, plan):
        self.source, self.plan = source, plan
        self.data: np.ndarray | None = None

    def emit(self, r0: int, block: np.ndarray) -> None:
        if self.data is None:
            self.data = np.empty((block.shape[0], self.plan.height, self.plan.width), dtype=block.dtype)
        self.data[:, r0: r0 + block.shape[1]] = block

    def scene(self, band_names=None, attrs: dict | None = None):
        import dask.array as da

        # georeference a lazy placeholder (make_scene's rio writes copy their data), then put the result in
        lazy = da.zeros(self.data.shape, dtype=self.data.dtype, chunks=-1)
        tmpl = make_scene(lazy, crs=self.source.crs, transform=self.source.transform,
                          nodata=self.plan.out_nodata, band_names=band_names, attrs=attrs)
        return tmpl.copy(deep=False, data=self.data)


class GeoTiffSink:
    """Writes rows in order into a tiled GeoTIFF (input CRS, transform; nodata; band descriptions).

    Rows are staged until a whole row of ``BLOCK`` x ``BLOCK`` tiles is complete, so every block is
    written once (no rewritten compressed blocks).  The file is opened at the first rows, when the
    number of output bands is known.
    """

    def __init__(self, path: str | os.PathLike, source: Source, plan, band_names=None, compress: str | None = "deflate",
                 tags: dict[str, Any] | None = None):
        self.path, self.source, self.plan = path, source, plan
        self.band_names, self.compress, self.tags = band_names, compress, tags or {}
        self.ds = None
        self.stage: list[np.ndarray] = []
        self.stage_start = 0
        self.next_row = 0

    def _open(self, k: int, dtype) -> None:
        import rasterio

        profile = dict(driver="GTiff", height=self.plan.height, width=self.plan.width, count=k, dtype=dtype,
                       tiled=True, blockxsize=BLOCK, blockysize=BLOCK, BIGTIFF="IF_SAFER",
                       nodata=self.plan.out_nodata, transform=self.source.transform)
        if self.source.crs is not None:
            profile["crs"] = self.source.crs
        if self.compress:
            profile["compress"] = self.compress
        self.ds = rasterio.open(self.path, "w", **profile)
        if self.band_names:
            for b, name in enumerate(self.band_names, start=1):
                self.ds.set_band_description(b, str(name))
        if self.tags:
            self.ds.update_tags(**{k: str(v) for k, v in self.tags.items()})

    def _write(self, r0: int, block: np.ndarray) -> None:
        from rasterio.windows import Window

        self.ds.write(block, window=Window(0, r0, self.plan.width, block.shape[1]))

    def emit(self, r0: int, block: np.ndarray) -> None:
        if self.ds is None:
            self._open(block.shape[0], block.dtype)
        if r0 != self.next_row:
            raise RuntimeError(f"rows must arrive in order: got {r0}, expected {self.next_row}")
        self.stage.append(block)
        self.next_row = r0 + block.shape[1]
        staged = self.next_row - self.stage_start
        if staged >= BLOCK or self.next_row == self.plan.height:
            data = np.concatenate(self.stage, axis=1) if len(self.stage) > 1 else self.stage[0]
            cut = staged if self.next_row == self.plan.height else (staged // BLOCK) * BLOCK
            self._write(self.stage_start, data[:, :cut])
            rest = data[:, cut:]
            self.stage = [rest] if rest.shape[1] else []
            self.stage_start += cut

    def close(self) -> None:
        if self.ds is not None:
            self.ds.close()
            self.ds = None
