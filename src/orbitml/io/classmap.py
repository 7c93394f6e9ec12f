"""Class maps as users open them: codes with a colour table and class names, in GeoTIFF and ENVI.

One writer for every workflow's class map (:func:`write_class_map`) and one colour per class set
(:func:`class_colours`), so the product, the HTML report and the PNG legend agree.

- GeoTIFF: a ``uint8`` (or ``uint16``) band with a GDAL colour table (QGIS shows it as paletted),
  the class names as GDAL category names (``<file>.aux.xml``), as the JSON tag ``CLASS_NAMES`` and
  as one tag ``CLASS_<code>`` per class;
  nodata is the largest code of the type (255 for ``uint8``).
- ENVI: an ``ENVI Classification`` header (``classes``, ``class lookup``, ``class names``).

Codes are ``0 .. len(names) - 1``; code 0 is usually "Unclassified".
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from orbitml.errors import OrbitmlInputError

# Unclassified grey, then a qualitative palette (Tableau 20 order: strong colours first, then light ones).
UNCLASSIFIED_RGB = (160, 160, 160)
_PALETTE = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (188, 189, 34), (23, 190, 207), (127, 127, 127),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148),
    (247, 182, 210), (219, 219, 141), (158, 218, 229), (199, 199, 199),
]
UNCLASSIFIED_NAMES = ("unclassified", "none", "no class", "background")
BLOCK_BYTES = 32 * 1024 * 1024  # rows of codes handled at once by write_class_map


def class_colours(names: list[str] | int, unclassified_first: bool = True) -> list[tuple[int, int, int]]:
    """An RGB colour per class; a class named "Unclassified" (any case) is grey.

    The colour of class ``i`` depends only on ``i`` (and on whether it is unclassified), so one
    class set gets the same colours in every product and figure.
    """
    if isinstance(names, int):
        names = [f"class {i}" for i in range(names)]
    out, k = [], 0
    for name in names:
        if str(name).strip().lower() in UNCLASSIFIED_NAMES:
            out.append(UNCLASSIFIED_RGB)
            continue
        base = _PALETTE[k % len(_PALETTE)]
        if k >= len(_PALETTE):  # beyond 20 classes: darker variants, still distinct from the first 20
            f = 0.6 if (k // len(_PALETTE)) % 2 else 0.8
            base = tuple(int(round(c * f)) for c in base)
        out.append(base)
        k += 1
    return out


@dataclass(frozen=True)
class ClassTable:
    names: tuple[str, ...]
    colours: tuple[tuple[int, int, int], ...]

    @classmethod
    def from_names(cls, names, colours=None) -> ClassTable:
        names = tuple(str(n) for n in names)
        if not names:
            raise OrbitmlInputError("a class map needs at least one class name")
        cols = class_colours(list(names)) if colours is None else [tuple(int(v) for v in c[:3]) for c in colours]
        if len(cols) != len(names):
            raise OrbitmlInputError(f"{len(names)} class names but {len(cols)} colours")
        return cls(names, tuple(cols))

    def as_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "colours": [list(c) for c in self.colours]}

    def matplotlib(self):
        """``(ListedColormap, BoundaryNorm)`` for ``imshow`` of codes ``0..n-1``."""
        from matplotlib.colors import BoundaryNorm, ListedColormap

        k = len(self.names)
        return (ListedColormap([tuple(v / 255 for v in c) for c in self.colours]),
                BoundaryNorm(np.arange(-0.5, k + 0.5), k))


def _dtype_nodata(n: int) -> tuple[np.dtype, int]:
    if n < 255:
        return np.dtype(np.uint8), 255
    if n < 65535:
        return np.dtype(np.uint16), 65535
    raise OrbitmlInputError(f"{n} classes: too many for a class map")


def _aux_xml(names) -> str:
    cats = "".join(f"      <Category>{escape(n)}</Category>\n" for n in names)
    return ("<PAMDataset>\n  <PAMRasterBand band=\"1\">\n    <CategoryNames>\n" + cats +
            "    </CategoryNames>\n  </PAMRasterBand>\n</PAMDataset>\n")


def write_class_map(codes: np.ndarray, path: str | os.PathLike, names, colours=None, *, crs=None, transform=None,
                    invalid: np.ndarray | None = None, attrs: dict[str, Any] | None = None, fmt: str | None = None,
                    overwrite: bool = False, invalid_code: int | None = None) -> Path:
    """Write a 2-D class map with its colour table and class names; returns the path.

    ``codes``: integers ``0..len(names)-1``; pixels where ``invalid`` is true (or codes < 0) become
    nodata, as do codes equal to ``invalid_code``.  ``codes`` may be a memory map: it is read by
    blocks of rows.  ``fmt``: "gtiff" or "envi" (default from the suffix: .tif/.tiff GeoTIFF, else ENVI).
    ``attrs``: extra tags (GeoTIFF) or description facts (ENVI), e.g. a simulated-data notice.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    from orbitml.io.atomic import atomic_path

    table = ClassTable.from_names(names, colours)
    path = Path(path)
    if not hasattr(codes, "ndim"):
        codes = np.asarray(codes)
    if codes.ndim != 2:
        raise OrbitmlInputError(f"a class map is 2-D, got shape {np.shape(codes)}", path)
    if invalid is not None and np.shape(invalid) != np.shape(codes):
        raise OrbitmlInputError(f"invalid mask {np.shape(invalid)} differs from the class map {np.shape(codes)}", path)
    n = len(table.names)
    dt, nodata = _dtype_nodata(n)
    height, width = codes.shape
    step = max(1, min(height, BLOCK_BYTES // max(1, width * 8)))
    spans = [(r0, min(height, r0 + step)) for r0 in range(0, height, step)]

    def block(r0: int, r1: int, check: bool = False) -> np.ndarray:
        # by blocks of rows: a memory-mapped class map of a large scene is never read whole
        c = np.asarray(codes[r0:r1])
        bad = c < 0
        if invalid is not None:
            bad = bad | np.asarray(invalid[r0:r1], bool)
        if invalid_code is not None:
            bad = bad | (c == invalid_code)
        if check:
            return c[~bad].max(initial=0)
        return np.where(bad, nodata, c).astype(dt)

    for r0, r1 in spans:  # check every code before anything is written
        top = int(block(r0, r1, check=True))
        if top >= n:
            raise OrbitmlInputError(f"class codes up to {top} but only {n} class names", path)
    fmt = fmt or ("gtiff" if path.suffix.lower() in (".tif", ".tiff") else "envi")
    prof: dict[str, Any] = {"count": 1, "height": height, "width": width, "dtype": dt.name,
                            "nodata": nodata}
    if transform is not None:
        prof["transform"] = transform
    if crs is not None:
        prof["crs"] = crs
    tags = {"CLASS_NAMES": json.dumps(list(table.names)), **{f"CLASS_{i}": n for i, n in enumerate(table.names)},
            **{k: str(v) for k, v in (attrs or {}).items()}}
    import warnings

    if fmt == "gtiff":
        with atomic_path(path, overwrite=overwrite) as tmp, \
                rasterio.Env(GDAL_PAM_ENABLED="NO"), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            tiled = {"tiled": True, "blockxsize": 256, "blockysize": 256} if min(height, width) >= 256 else {}
            with rasterio.open(tmp, "w", driver="GTiff", compress="deflate", BIGTIFF="IF_SAFER", **tiled,
                               **prof) as ds:
                for r0, r1 in spans:
                    ds.write(block(r0, r1), 1, window=Window(0, r0, width, r1 - r0))
                ds.write_colormap(1, {i: (*c, 255) for i, c in enumerate(table.colours)})
                ds.set_band_description(1, "class")
                ds.update_tags(**tags)
            Path(str(tmp) + ".aux.xml").write_text(_aux_xml(table.names), encoding="utf-8")
            _move_aux(tmp, path)
        return path
    if fmt != "envi":
        raise OrbitmlInputError(f"unknown class map format {fmt!r}; use gtiff or envi", path)
    from orbitml.io.envi import update_header

    with atomic_path(path, overwrite=overwrite, siblings=(".hdr",)) as tmp, rasterio.Env(GDAL_PAM_ENABLED="NO"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", driver="ENVI", **prof) as ds:
            for r0, r1 in spans:
                ds.write(block(r0, r1), 1, window=Window(0, r0, width, r1 - r0))
        desc = ", ".join(f"{k}={v}" for k, v in (attrs or {}).items())
        lookup = [str(v) for c in table.colours for v in c]
        update_header(tmp.with_suffix(".hdr"), {
            "description": "{orbitml class map" + (f": {desc}" if desc else "") + "}",
            "file type": "ENVI Classification", "classes": n, "class lookup": lookup,
            "class names": list(table.names), "band names": ["class"], "data ignore value": nodata})
    return path


def _move_aux(tmp: Path, path: Path) -> None:
    aux = Path(str(tmp) + ".aux.xml")
    if aux.exists():
        os.replace(aux, Path(str(path) + ".aux.xml"))


def read_class_table(path: str | os.PathLike) -> ClassTable | None:
    """The class names and colours of a class map written by :func:`write_class_map` (None if it has none)."""
    import rasterio

    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        with rasterio.open(path) as ds:
            names = json.loads(ds.tags().get("CLASS_NAMES", "null") or "null")
            if names is None:
                return None
            cmap = ds.colormap(1)
        return ClassTable.from_names(names, [cmap[i][:3] for i in range(len(names))])
    from orbitml.io.envi import read_header

    hdr = read_header(path.with_suffix(".hdr") if path.suffix != ".hdr" else path)
    if "class names" not in hdr:
        return None
    lut = [int(v) for v in hdr.get("class lookup", [])]
    cols = [tuple(lut[3 * i: 3 * i + 3]) for i in range(len(lut) // 3)] or None
    return ClassTable.from_names(hdr["class names"], cols)
