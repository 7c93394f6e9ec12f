"""Read and write scenes: ENVI, GeoTIFF/COG, PDS3, ISIS3, PDS4, FITS, JPEG2000.

:func:`open_scene` dispatches on content (magic bytes, label text), not only on the suffix, and returns
the scene data model of :mod:`orbitml.scene`.  :func:`write_scene` writes ENVI or GeoTIFF atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from orbitml.errors import OrbitmlInputError
from orbitml.io import pds3
from orbitml.io._gdal import read_gdal
from orbitml.io.detect import detect_format, envi_header_for
from orbitml.io.envi import header_facts
from orbitml.io.fits import read_fits
from orbitml.io.wavelengths import as_wavelengths, read_wavelength_table
from orbitml.io.write import write_scene
from orbitml.scene import make_scene

__all__ = ["open_scene", "write_scene", "describe", "detect_format", "read_wavelength_table"]


def _chunks(chunks: Any, shape: tuple[int, ...]) -> Any:
    if chunks is None or chunks == "auto":
        return chunks
    if isinstance(chunks, int):
        return (shape[0], chunks, chunks)
    if isinstance(chunks, dict):
        return (chunks.get("band", shape[0]), chunks.get("y", shape[1]), chunks.get("x", shape[2]))
    return tuple(chunks)


def _lazy(arr: np.ndarray, chunks: Any) -> Any:
    if arr.ndim == 2:
        arr = arr[None]
    if chunks is None:
        return np.array(arr)
    import dask.array as da

    return da.from_array(arr, chunks=_chunks(chunks, arr.shape), lock=False)


def _envi_data_file(hdr: Path) -> Path:
    for cand in (hdr.with_suffix(""), *(hdr.with_suffix(s) for s in (".img", ".IMG", ".dat", ".bsq", ".bil",
                                                                      ".bip", ".raw", ".sli"))):
        if cand.exists() and cand != hdr:
            return cand
    raise OrbitmlInputError("ENVI header found but no data file beside it", hdr)


def _gtiff_wavelengths(facts: dict) -> np.ndarray | None:
    wl = []
    for tags in facts["band_tags"]:
        v = tags.get("wavelength") or tags.get("WAVELENGTH")
        if v is None:
            return None
        units = (tags.get("wavelength_units") or "nm").lower()
        wl.append(float(v) * (1000.0 if units.startswith(("um", "micro")) else 1.0))
    return np.asarray(wl) if wl else None


def open_scene(
    path: str | os.PathLike,
    *,
    chunks: Any = None,
    wavelengths: str | os.PathLike | Sequence[float] | None = None,
    hdu: int | str | None = None,
) -> xr.DataArray:
    """Open an image file as a scene (dims band, y, x).

    ``chunks`` (an int, a dict with y/x/band, or "auto") returns a lazy dask-backed scene read by windows.
    ``wavelengths`` (a CSV/TAB path or numbers, nm) sets band centres when the product carries none, and
    must match the band count.  ``hdu`` selects a FITS HDU by index or EXTNAME.
    """
    path = Path(path)
    fmt = detect_format(path)
    attrs: dict[str, Any] = {"source": str(path)}
    wl = fwhm = band_names = None
    crs = transform = nodata = None
    if fmt == "fits":
        data, facts = read_fits(path, hdu)
        data = _lazy(data, chunks)
        nodata = facts.pop("nodata")
        attrs.update({k: v for k, v in facts.items() if k != "header"}, format="FITS", driver="astropy")
        attrs["fits_header"] = facts["header"]
    elif fmt in ("pds3", "pds3-data"):
        label = pds3.find_label(path)
        meta = pds3.read_label(label)
        layout = pds3.image_layout(label, meta)
        attrs.update(pds3.label_facts(meta), format="PDS3", label=str(label))
        if "jp2" in layout:
            data, facts = read_gdal(layout["jp2"], chunks)
            crs, transform, nodata = facts["crs"], facts["transform"], facts["nodata"]
            attrs["driver"] = facts["driver"]
        else:
            arr = pds3.memmap_image(layout)
            if chunks is None:
                from orbitml.io.integrity import check_raster_load

                check_raster_load(arr.shape, arr.dtype, label)
            data = _lazy(arr, chunks)
            if layout["scale"] != 1.0 or layout["add"] != 0.0:
                data = data * layout["scale"] + layout["add"]
            nodata = layout["nodata"]
            band_names = layout["band_names"]
            if layout["unit"]:
                attrs["units"] = str(layout["unit"])
            attrs["driver"] = "orbitml-pds3"
            crs, transform = _pds3_georef(label, arr.shape)
        wfile = attrs.get("wavelength_file")
        if wavelengths is None and wfile:
            try:
                wl = as_wavelengths(pds3._resolve(label, wfile), data.shape[0])
            except OrbitmlInputError:
                wl = None  # the product's table is not beside it; the user may pass one
    elif fmt == "envi":
        hdr = envi_header_for(path) or path
        facts_h = header_facts(hdr)
        if str(facts_h["header"].get("file type", "")).lower().startswith("envi spectral library"):
            raise OrbitmlInputError("is an ENVI spectral library, not an image; use orbitml.spectra.read_library",
                                    path)
        data_file = path if path != hdr else _envi_data_file(hdr)
        from orbitml.io.integrity import check_envi

        check_envi(hdr, facts_h["header"], data_file)
        data, facts = read_gdal(data_file, chunks)
        crs, transform, nodata = facts["crs"], facts["transform"], facts["nodata"]
        if nodata is None:
            nodata = facts_h["ignore"]
        wl, fwhm, band_names = facts_h["wavelength"], facts_h["fwhm"], facts_h["band_names"]
        attrs.update(format="ENVI", driver="ENVI")
        if facts_h["header"].get("class names"):
            attrs["class_names"] = list(facts_h["header"]["class names"])
        if facts_h["description"]:
            attrs["description"] = str(facts_h["description"])[:500]
    else:
        data, facts = read_gdal(path, chunks, isis=(fmt == "isis3"))
        crs, transform, nodata = facts["crs"], facts["transform"], facts["nodata"]
        attrs.update(format={"isis3": "ISIS3", "pds4": "PDS4", "gtiff": "GeoTIFF", "jp2": "JPEG2000"}.get(
            fmt, facts["driver"]), driver=facts["driver"])
        if fmt == "gtiff":
            wl = _gtiff_wavelengths(facts)
            fw = [t.get("fwhm") for t in facts["band_tags"]]
            if wl is not None and all(v is not None for v in fw):
                fwhm = np.asarray([float(v) for v in fw])
            descs = facts["descriptions"]
            if any(descs) and wl is None:
                band_names = [d or f"band {i + 1}" for i, d in enumerate(descs)]
            for k, v in facts["tags"].items():
                if k.startswith("ORBITML_"):
                    attrs[k[8:].lower()] = v
        if fmt == "isis3":
            attrs.update(_isis_facts(path))
    if data.ndim == 2:
        data = data[None]
    if wavelengths is not None:
        wl = as_wavelengths(wavelengths, data.shape[0], source=path)
        fwhm = fwhm if fwhm is not None and len(fwhm) == data.shape[0] else None
    elif wl is not None and len(wl) != data.shape[0]:
        raise OrbitmlInputError(f"the file lists {len(wl)} wavelengths for {data.shape[0]} bands", path)
    if band_names is not None and len(band_names) != data.shape[0]:
        band_names = None
    from orbitml.io.integrity import check_finite_wavelengths

    check_finite_wavelengths(wl, Path(wavelengths) if isinstance(wavelengths, str | os.PathLike) else path)
    if transform is not None and transform.is_identity:
        transform = None
    return make_scene(data, wavelength=wl, fwhm=fwhm, band_names=band_names, crs=crs, transform=transform,
                      nodata=nodata, attrs=attrs, name=path.stem)


def _pds3_georef(label: Path, shape: tuple[int, ...]):
    """CRS and transform from GDAL's reading of the same label, when it agrees on the shape."""
    import warnings

    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(label) as ds:
                if (ds.count, ds.height, ds.width) == tuple(shape) and ds.crs is not None:
                    return ds.crs, ds.transform
    except Exception:  # GDAL cannot read this label: no georeferencing, pixels still fine
        pass
    return None, None


def _isis_facts(path: Path) -> dict[str, Any]:
    """Instrument facts from an ISIS3 label, which GDAL exposes as JSON (metadata domain json:ISIS3)."""
    import json
    import warnings

    import rasterio

    out: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(path) as ds:
                items = ds.tags(ns="json:ISIS3")
        text = "".join(f"{k}:{v}" for k, v in items.items())  # GDAL splits the JSON at its first ':'
        label = json.loads(text)
    except Exception:  # no label JSON: the pixels are still fine
        return out
    inst = label.get("IsisCube", {}).get("Instrument", {})
    for key, attr in (("InstrumentId", "instrument"), ("SpacecraftName", "mission"), ("TargetName", "target"),
                      ("StartTime", "start_time")):
        if key in inst:
            out[attr] = str(inst[key])
    arch = label.get("IsisCube", {}).get("Archive", {})
    if "ProductId" in arch:
        out["product_id"] = str(arch["ProductId"])
    return out


def describe(path: str | os.PathLike, **kwargs: Any) -> dict[str, Any]:
    """What a file is: format, shape, dtype, bands, wavelength range, CRS, transform, nodata, label facts."""
    scene = open_scene(path, chunks="auto", **kwargs)
    from orbitml.scene import wavelengths as _wl

    wl = _wl(scene)
    crs = scene.rio.crs
    info: dict[str, Any] = {
        "path": str(path),
        "format": scene.attrs.get("format"),
        "driver": scene.attrs.get("driver"),
        "bands": int(scene.sizes["band"]),
        "height": int(scene.sizes["y"]),
        "width": int(scene.sizes["x"]),
        "dtype": str(scene.dtype),
        "wavelength_nm": None if wl is None else [float(np.nanmin(wl)), float(np.nanmax(wl))],
        "crs": None if crs is None else _crs_name(crs),
        "crs_wkt": None if crs is None else crs.to_wkt(),
        "transform": list(scene.rio.transform())[:6],
        "nodata": None if scene.rio.nodata is None else float(scene.rio.nodata),
    }
    for k in ("instrument", "product_id", "product_type", "mission", "target", "start_time", "units",
              "exposure_s", "date_obs", "telescope", "hdu", "extname"):
        if k in scene.attrs:
            info[k] = scene.attrs[k]
    return info


def _crs_name(crs) -> str:
    """A readable CRS name: 'EPSG:32612 (WGS 84 / UTM zone 12N)', or the WKT's own name (Mars CRSs)."""
    from pyproj import CRS

    try:
        pc = CRS.from_wkt(crs.to_wkt())
        epsg = pc.to_epsg()
        if epsg is not None:
            return f"EPSG:{epsg} ({CRS.from_epsg(epsg).name})"
        return pc.name
    except Exception:  # a CRS pyproj cannot parse: show GDAL's string
        return crs.to_string()[:80]
