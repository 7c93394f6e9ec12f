"""Products of ``orbitml minmap map``: class map (GeoTIFF + ENVI classification), abundance cube, PNG.

* ``class_map.tif``: uint8, 0 = Unclassified, 1..K the classes, 255 = nodata, written by
  :func:`orbitml.io.classmap.write_class_map`: a colour table, class names (GDAL category names,
  ``CLASS_NAMES`` and ``CLASS_<value>`` tags) and the model's honesty notice (``ORBITML_NOTICE``)
  when it was trained on simulated data;
* ``class_map.img/.hdr``: the same as an ENVI classification (``class names``, ``class lookup``);
* ``abundances.img/.hdr``: ENVI BSQ float32, one band per class named after it, NaN = nodata;
* ``confidence.tif``: the top class probability (float32);
* ``classified.png``: the class map with a legend.
CRS and transform are those of the scene in every raster.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from orbitml.minmap.mapping import CLASS_NODATA, MapResult

__all__ = ["write_class_tif", "write_products", "class_figure", "staged_folder"]


def class_figure(classes: np.ndarray, names: list[str], title: str = "", notice: str | None = None):
    """Figure of a 0..K class map (255 = nodata, white) with a legend of the classes present."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from orbitml.io.classmap import ClassTable

    labels = ["Unclassified", *names]
    table = ClassTable.from_names(labels)  # the palette of the class-map products
    cols = [tuple(c / 255 for c in rgb) for rgb in table.colours]
    cmap, norm = table.matplotlib()
    cmap = cmap.with_extremes(bad="white")
    shown = np.ma.masked_where(classes == CLASS_NODATA, classes)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    ax.imshow(shown, cmap=cmap, norm=norm, interpolation="nearest")
    present = sorted(set(np.unique(classes[classes != CLASS_NODATA]).tolist()))
    ax.legend(handles=[Patch(color=cols[i], label=labels[i]) for i in present if i < len(labels)],
              loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    ax.set_title(title + (f"\n{notice}" if notice else ""), fontsize=9)
    ax.set_axis_off()
    fig.tight_layout()
    return fig


class staged_folder:  # noqa: N801 - a context manager used like a function
    """Write products into a hidden folder beside ``out``; move them into ``out`` only on success."""

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)

    def __enter__(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out / f".partial-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for p in sorted(self.tmp.iterdir()):
                    dest = self.out / p.name
                    if dest.is_dir() and not p.is_dir():
                        shutil.rmtree(dest)
                    os.replace(p, dest)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


MAX_FIGURE_PX = 2000
BLOCK_BYTES = 32 * 1024 * 1024  # rows of an output array handed to the writers at once


def _lazy(arr: np.ndarray):
    """A dask view of an output array, so the writers read it by blocks of rows (never whole)."""
    import dask.array as da

    rows = max(1, min(arr.shape[-2], BLOCK_BYTES // max(1, arr.itemsize * arr.shape[0] * arr.shape[-1])))
    # wrapped and named: dask copies numpy arrays into chunks up front and hashes them to name them
    return da.from_array(_Sliced(arr), chunks=(arr.shape[0], rows, arr.shape[-1]), asarray=False,
                         name=f"minmap-output-{uuid.uuid4().hex}", meta=np.empty((0, 0, 0), arr.dtype))


class _Sliced:
    """An array seen only through slicing (what :func:`dask.array.from_array` reads lazily)."""

    def __init__(self, arr: np.ndarray):
        self.arr, self.shape, self.dtype, self.ndim = arr, arr.shape, arr.dtype, arr.ndim

    def __getitem__(self, key):
        return np.asarray(self.arr[key])


def write_class_tif(path: Path, classes: np.ndarray, scene, names: list[str], notice: str | None,
                    fmt: str = "gtiff") -> None:
    """The class map (0 Unclassified, 1..K, 255 nodata) with colour table and names (``orbitml.io.classmap``)."""
    from orbitml.io.classmap import write_class_map
    from orbitml.scene import has_geotransform

    geo = has_geotransform(scene)
    write_class_map(classes, path, ["Unclassified", *names],
                    crs=scene.rio.crs if geo else None, transform=scene.rio.transform() if geo else None,
                    invalid_code=CLASS_NODATA, fmt=fmt, overwrite=True,
                    attrs={"ORBITML_NOTICE": notice} if notice else None)


def write_products(res: MapResult, scene, card: dict, out: str | os.PathLike, notice: str | None = None
                   ) -> dict[str, Path]:
    """Write every product of a mapping run into ``out`` (staged, so a failure leaves none)."""
    import matplotlib.pyplot as plt

    from orbitml.io import write_scene
    from orbitml.io.envi import update_header
    from orbitml.scene import make_scene

    names = list(card["classes"])
    crs, transform = scene.rio.crs, scene.rio.transform()
    abundances, confidence = _lazy(res.abundances), _lazy(res.confidence[None])
    desc = "{orbitml minmap" + (f"; {notice}" if notice else "") + "}"
    written: dict[str, Path] = {}
    with staged_folder(out) as tmp:
        write_class_tif(tmp / "class_map.tif", res.classes, scene, names, notice)
        write_class_tif(tmp / "class_map.img", res.classes, scene, names, notice, fmt="envi")
        ab = make_scene(abundances, band_names=[f"abundance {n}" for n in names], crs=crs,
                        transform=transform, nodata=np.nan,
                        attrs={"units": "abundance (0-1)", "instrument": str(scene.attrs.get("instrument", ""))})
        write_scene(ab, tmp / "abundances.img", format="envi", overwrite=True, dtype=np.float32)
        update_header(tmp / "abundances.hdr", {"description": desc})
        conf = make_scene(confidence, band_names=["top class probability"], crs=crs,
                          transform=transform, nodata=np.nan, attrs={"units": "probability"})
        write_scene(conf, tmp / "confidence.tif", format="gtiff", overwrite=True)
        src = Path(str(scene.attrs.get("source", ""))).name
        step = max(1, -(-max(res.classes.shape) // MAX_FIGURE_PX))  # a decimated view of a large map
        fig = class_figure(np.asarray(res.classes[::step, ::step]), names, title=f"minmap classes ({src})",
                           notice=notice)
        fig.savefig(tmp / "classified.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        names_written = [p.name for p in tmp.iterdir()]
    for n in names_written:
        written[n] = Path(out) / n
    return written
