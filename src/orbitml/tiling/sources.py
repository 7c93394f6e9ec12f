"""Window readers over a raster file (rasterio windows) or a scene in memory / backed by dask.

A source is picklable (a file source re-opens its dataset in each process), so it can travel to
dask workers and torch DataLoader workers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from orbitml.errors import OrbitmlInputError
from orbitml.scene import check_scene, make_scene

__all__ = ["Source", "FileSource", "SceneSource", "open_source", "invalid_mask"]


def invalid_mask(block: np.ndarray, nodata: float | None) -> np.ndarray:
    """``(y, x)`` True where any band is non-finite or equal to nodata (a pixel is valid only if all bands are)."""
    bad = np.zeros(block.shape[1:], dtype=bool)
    isfloat = np.issubdtype(block.dtype, np.floating)
    if isfloat:
        bad |= ~np.isfinite(block).all(axis=0)
    if nodata is not None and np.isfinite(nodata):
        bad |= (block == block.dtype.type(nodata) if not isfloat else block == nodata).any(axis=0)
    return bad


class Source:
    """Common interface: ``height``, ``width``, ``count``, ``dtype``, ``nodata``, ``crs``, ``transform``."""

    height: int
    width: int
    count: int
    dtype: np.dtype
    nodata: float | None
    crs: Any
    transform: Affine
    name: str
    band_names: list[str] | None = None

    def read(self, r0: int, r1: int, c0: int = 0, c1: int | None = None) -> np.ndarray:
        """``(count, r1-r0, c1-c0)`` block inside the image."""
        raise NotImplementedError

    def read_reflect(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Block at already-reflected row and column indices (each inside the image)."""
        r0, r1 = int(rows.min()), int(rows.max()) + 1
        c0, c1 = int(cols.min()), int(cols.max()) + 1
        block = self.read(r0, r1, c0, c1)
        if len(rows) != r1 - r0 or not np.array_equal(rows, np.arange(r0, r1)):
            block = block[:, rows - r0]
        if len(cols) != c1 - c0 or not np.array_equal(cols, np.arange(c0, c1)):
            block = block[:, :, cols - c0]
        return block

    def close(self) -> None:  # pragma: no cover - trivial
        pass


class FileSource(Source):
    """A raster file read by rasterio windows; never reads the whole image."""

    def __init__(self, path: str | os.PathLike):
        import rasterio

        from orbitml.io._gdal import open_dataset  # containment (VRT sources, /vsi paths) and GeoTIFF checks

        self.path = Path(path)
        if not self.path.exists():
            raise OrbitmlInputError("no such file", self.path)
        try:
            with open_dataset(self.path) as ds:
                self.height, self.width, self.count = ds.height, ds.width, ds.count
                self.dtype = np.dtype(ds.dtypes[0])
                self.nodata = ds.nodata
                self.crs = ds.crs
                self.transform = ds.transform
                desc = list(ds.descriptions)
                self.band_names = [d for d in desc] if any(desc) else None
        except rasterio.errors.RasterioIOError as exc:
            raise OrbitmlInputError(f"cannot read as a raster: {exc}", self.path) from None
        self.name = self.path.name
        self._ds = None
        self._pid = None

    def _dataset(self):
        from orbitml.io._gdal import open_dataset

        if self._ds is None or self._pid != os.getpid():
            self._ds = open_dataset(self.path)
            self._pid = os.getpid()
        return self._ds

    def read(self, r0: int, r1: int, c0: int = 0, c1: int | None = None) -> np.ndarray:
        from rasterio.windows import Window

        c1 = self.width if c1 is None else c1
        return self._dataset().read(window=Window(c0, r0, c1 - c0, r1 - r0))

    def close(self) -> None:
        if self._ds is not None:
            self._ds.close()
            self._ds = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_ds"] = None
        state["_pid"] = None
        return state


class SceneSource(Source):
    """A scene (numpy- or dask-backed DataArray); dask blocks are computed window by window."""

    def __init__(self, scene: xr.DataArray, name: str = "scene"):
        check_scene(scene)
        self.scene = scene
        self.count, self.height, self.width = (int(v) for v in scene.shape)
        self.dtype = np.dtype(scene.dtype)
        self.nodata = scene.rio.nodata
        self.crs = scene.rio.crs
        self.transform = scene.rio.transform()
        self.band_names = ([str(v) for v in scene.coords["band_name"].values]
                           if "band_name" in scene.coords else None)
        self.name = str(scene.attrs.get("product_id") or scene.name or name)

    def read(self, r0: int, r1: int, c0: int = 0, c1: int | None = None) -> np.ndarray:
        c1 = self.width if c1 is None else c1
        return np.asarray(self.scene.data[:, r0:r1, c0:c1])


def _path_source(path: Path) -> Source:
    """GeoTIFF (and unknown GDAL formats) through rasterio windows; every other format through
    :func:`orbitml.io.open_scene` lazily (dask chunks read on demand), so PDS3 offsets, ISIS3 special
    pixels, ENVI headers and FITS are handled as everywhere else in orbitml."""
    if not path.exists():
        raise OrbitmlInputError("no such file", path)
    from orbitml.io import open_scene
    from orbitml.io.detect import detect_format

    fmt = detect_format(path)
    if fmt in ("gtiff", "gdal"):
        return FileSource(path)
    scene = open_scene(path, chunks="auto")  # lazy: only the windows asked for are read
    src = SceneSource(scene, name=path.name)
    src.name = path.name
    return src


def open_source(obj: Any) -> Source:
    """A :class:`Source` from a path, a scene, or a 2-D/3-D numpy array."""
    if isinstance(obj, Source):
        return obj
    if isinstance(obj, str | os.PathLike):
        return _path_source(Path(obj))
    if isinstance(obj, xr.DataArray):
        return SceneSource(obj)
    if isinstance(obj, np.ndarray) or hasattr(obj, "__dask_graph__"):
        return SceneSource(make_scene(obj))
    raise OrbitmlInputError(f"expected a raster path, a scene or an array, got {type(obj).__name__}")
