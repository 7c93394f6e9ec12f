"""Writers: ENVI (BSQ) and GeoTIFF/COG, carrying CRS, transform, wavelengths, nodata and band names."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from orbitml.errors import OrbitmlInputError
from orbitml.io.atomic import atomic_path
from orbitml.io.envi import update_header
from orbitml.scene import check_scene, has_geotransform, wavelengths

BLOCK_BYTES = 64 * 1024 * 1024  # pixels read and written at once by the writers (blocks of rows)
_SUFFIX_FORMAT = {".tif": "gtiff", ".tiff": "gtiff", ".img": "envi", ".bsq": "envi", ".dat": "envi", "": "envi"}


def _band_labels(scene: xr.DataArray) -> list[str]:
    if "band_name" in scene.coords:
        return [str(v) for v in scene.coords["band_name"].values]
    wl = wavelengths(scene)
    if wl is not None:
        return [f"{w:.2f} nm" for w in wl]
    return [f"band {int(b)}" for b in scene.coords["band"].values]


def _out_dtype(scene: xr.DataArray, fmt: str, dtype: Any) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    src = np.dtype(scene.dtype)
    if np.issubdtype(src, np.floating):
        return np.dtype(np.float32) if src.itemsize <= 4 or fmt == "envi" else src
    if src == np.bool_:
        return np.dtype(np.uint8)
    return src


def _row_blocks(height: int, rows: int):
    for r0 in range(0, height, rows):
        yield r0, min(height, r0 + rows)


def _write_pixels(ds, scene: xr.DataArray, dtype: np.dtype) -> None:
    """Write band-sequential data by blocks of rows (dask scenes are computed one block at a time)."""
    from orbitml.io.integrity import max_memory

    nb, h, w = scene.shape
    budget = min(BLOCK_BYTES, max_memory() // 8)  # a block and its type-converted copy, well under the limit
    rows = max(1, min(h, budget // max(1, nb * w * dtype.itemsize)))
    data = scene.data
    for r0, r1 in _row_blocks(h, rows):
        block = np.asarray(data[:, r0:r1, :])
        ds.write(block.astype(dtype, copy=False), window=Window(0, r0, w, r1 - r0))


def _profile(scene: xr.DataArray, driver: str, dtype: np.dtype) -> dict:
    nb, h, w = scene.shape
    prof: dict[str, Any] = {"driver": driver, "count": nb, "height": h, "width": w, "dtype": dtype.name}
    if has_geotransform(scene):
        prof["transform"] = scene.rio.transform()
        if scene.rio.crs is not None:
            prof["crs"] = scene.rio.crs
    nodata = scene.rio.nodata
    if nodata is not None:
        prof["nodata"] = nodata
    return prof


def write_envi(scene: xr.DataArray, path: Path, overwrite: bool, dtype: Any = None) -> Path:
    dt = _out_dtype(scene, "envi", dtype)
    wl = wavelengths(scene)
    with atomic_path(path, overwrite=overwrite, siblings=(".hdr",)) as tmp, rasterio.Env(GDAL_PAM_ENABLED="NO"):
        prof = _profile(scene, "ENVI", dt)
        prof["INTERLEAVE"] = "BSQ"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **prof) as ds:
                _write_pixels(ds, scene, dt)
        hdr = tmp.with_suffix(".hdr")
        fields: dict[str, Any] = {"band names": _band_labels(scene)}
        if wl is not None:
            fields["wavelength units"] = "Nanometers"
            fields["wavelength"] = [f"{v:.10g}" for v in wl]
            if "fwhm" in scene.coords:
                fields["fwhm"] = [f"{v:.10g}" for v in scene.coords["fwhm"].values]
        if scene.rio.nodata is not None:
            fields["data ignore value"] = scene.rio.nodata
        # always written: GDAL would otherwise leave the temporary file name of the atomic write here
        desc = ", ".join(f"{k}={v}" for k, v in scene.attrs.items()
                         if k in ("instrument", "product_id", "units", "notice", "processing"))
        fields["description"] = "{orbitml " + Path(path).name + (f": {desc}" if desc else "") + "}"
        update_header(hdr, fields)
    return path


def write_gtiff(scene: xr.DataArray, path: Path, overwrite: bool, dtype: Any = None, cog: bool = False) -> Path:
    dt = _out_dtype(scene, "gtiff", dtype)
    wl = wavelengths(scene)
    labels = _band_labels(scene)
    nb, h, w = scene.shape
    with atomic_path(path, overwrite=overwrite) as tmp, rasterio.Env(GDAL_PAM_ENABLED="NO"):
        prof = _profile(scene, "GTiff", dt)
        prof.update(compress="deflate", BIGTIFF="IF_SAFER")
        if h >= 256 and w >= 256:
            prof.update(tiled=True, blockxsize=256, blockysize=256)
        prof["interleave"] = "band" if nb > 3 else "pixel"
        target = tmp.with_name(tmp.name + ".plain.tif") if cog else tmp
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(target, "w", **prof) as ds:
                _write_pixels(ds, scene, dt)
                for i in range(nb):
                    ds.set_band_description(i + 1, labels[i])
                    if wl is not None:
                        tags = {"wavelength": f"{wl[i]:.10g}", "wavelength_units": "nm"}
                        if "fwhm" in scene.coords:
                            tags["fwhm"] = f"{float(scene.coords['fwhm'].values[i]):.10g}"
                        ds.update_tags(i + 1, **tags)
                        imagery = {"CENTRAL_WAVELENGTH_UM": f"{wl[i] / 1000:.8g}"}
                        if "fwhm" in scene.coords:
                            imagery["FWHM_UM"] = f"{float(scene.coords['fwhm'].values[i]) / 1000:.8g}"
                        ds.update_tags(i + 1, ns="IMAGERY", **imagery)
                # the source's file name only: a product must not embed the paths of the user's machine
                attrs = {k: (Path(str(v)).name if k == "source" else str(v)) for k, v in scene.attrs.items()
                         if k in ("instrument", "product_id", "units", "source", "notice", "processing")
                         and v is not None}
                if attrs:
                    ds.update_tags(**{f"ORBITML_{k.upper()}": v for k, v in attrs.items()})
        if cog:
            from rasterio.shutil import copy as rio_copy

            try:
                rio_copy(target, tmp, driver="COG", compress="deflate")
            finally:
                target.unlink(missing_ok=True)
    return path


def write_scene(
    scene: xr.DataArray,
    path: str | os.PathLike,
    format: str | None = None,
    *,
    overwrite: bool = False,
    dtype: Any = None,
) -> Path:
    """Write a scene as ENVI (BSQ + .hdr) or GeoTIFF/COG, atomically.

    ``format`` is ``"envi"``, ``"gtiff"`` or ``"cog"``; by default it follows the suffix (``.tif`` ->
    GeoTIFF, anything else -> ENVI).  Float data are written as float32 unless ``dtype`` says otherwise;
    integer data keep their type.  CRS, transform, wavelengths (nm), FWHM, band names and nodata are
    written into the header or tags so the product opens correctly in QGIS and ENVI.
    """
    check_scene(scene)
    path = Path(path)
    fmt = (format or _SUFFIX_FORMAT.get(path.suffix.lower(), "envi")).lower()
    if fmt in ("tif", "tiff", "geotiff"):
        fmt = "gtiff"
    if fmt == "envi":
        return write_envi(scene, path, overwrite, dtype)
    if fmt in ("gtiff", "cog"):
        return write_gtiff(scene, path, overwrite, dtype, cog=fmt == "cog")
    raise OrbitmlInputError(f"unknown output format {format!r}; expected envi, gtiff or cog", path)
