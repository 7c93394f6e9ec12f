"""The one image data model of orbitml.

A *scene* is an :class:`xarray.DataArray` with dims ``("band", "y", "x")``:

* coordinate ``band`` (1-based band numbers), and on it, when the instrument has them,
  ``wavelength`` (band centres in nanometres, float) and ``fwhm`` (nm); optional ``band_name``;
* ``x``/``y`` coordinates at pixel centres, CRS and affine transform through rioxarray
  (``scene.rio.crs``, ``scene.rio.transform()``);
* nodata through rioxarray (``scene.rio.nodata``); NaN is always treated as invalid for floats;
* the source label's key facts in ``attrs`` (``instrument``, ``product_id``, ``units``,
  ``source``, ``format`` ...).

A large scene is the same object backed by dask chunks.  The numerical layers work on plain
``(n_pixels, n_bands)`` numpy arrays; :func:`pixels` and :func:`from_pixels` convert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine

from orbitml.errors import OrbitmlInputError

DIMS = ("band", "y", "x")

__all__ = [
    "DIMS",
    "make_scene",
    "check_scene",
    "valid_mask",
    "empty_bands",
    "to_float",
    "pixels",
    "from_pixels",
    "wavelengths",
    "has_geotransform",
    "select_bands",
]


def _coords_from_transform(transform: Affine, height: int, width: int):
    cols = np.arange(width) + 0.5
    rows = np.arange(height) + 0.5
    if transform.b == 0 and transform.d == 0:
        x = transform.c + cols * transform.a
        y = transform.f + rows * transform.e
    else:  # rotated grid: coordinates along the first row / column only
        x = np.array([(transform @ (c, 0.5))[0] for c in cols])
        y = np.array([(transform @ (0.5, r))[1] for r in rows])
    return x, y


def make_scene(
    data: Any,
    *,
    wavelength: Sequence[float] | np.ndarray | None = None,
    fwhm: Sequence[float] | np.ndarray | None = None,
    band_names: Sequence[str] | None = None,
    crs: Any = None,
    transform: Affine | Sequence[float] | None = None,
    nodata: float | int | None = None,
    attrs: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> xr.DataArray:
    """Build a scene from a 2-D ``(y, x)`` or 3-D ``(band, y, x)`` numpy or dask array.

    ``transform`` is an :class:`affine.Affine` (or its 6 GDAL-order numbers); without one the
    pixel grid is used (identity transform, no CRS).  ``wavelength`` and ``fwhm`` are in nm.
    """
    ndim = getattr(data, "ndim", None)
    if ndim == 2:
        data = data[None, :, :]
    elif ndim != 3:
        raise OrbitmlInputError(f"a scene needs a 2-D (y, x) or 3-D (band, y, x) array, got {ndim}-D")
    nb, h, w = data.shape
    if transform is None:
        transform = Affine.identity()
    elif not isinstance(transform, Affine):
        t = tuple(float(v) for v in transform)
        transform = Affine.from_gdal(*t) if len(t) == 6 else Affine(*t[:6])
    x, y = _coords_from_transform(transform, h, w)
    coords: dict[str, Any] = {"band": np.arange(1, nb + 1), "y": y, "x": x}
    if wavelength is not None:
        wl = np.asarray(wavelength, dtype=float).ravel()
        if wl.size != nb:
            raise OrbitmlInputError(f"{wl.size} wavelengths given for {nb} bands")
        coords["wavelength"] = ("band", wl)
    if fwhm is not None:
        fw = np.asarray(fwhm, dtype=float).ravel()
        if fw.size != nb:
            raise OrbitmlInputError(f"{fw.size} FWHM values given for {nb} bands")
        coords["fwhm"] = ("band", fw)
    if band_names is not None:
        names = [str(n) for n in band_names]
        if len(names) != nb:
            raise OrbitmlInputError(f"{len(names)} band names given for {nb} bands")
        coords["band_name"] = ("band", np.array(names, dtype=object))
    da = xr.DataArray(data, dims=DIMS, coords=coords, attrs=dict(attrs or {}), name=name)
    # inplace: rioxarray would otherwise copy the data for each call
    da.rio.write_transform(transform, inplace=True)
    if crs is not None:
        da.rio.write_crs(crs, inplace=True)
    if nodata is not None:
        da.rio.write_nodata(nodata, encoded=False, inplace=True)
    return da


def check_scene(scene: Any, what: str = "scene") -> xr.DataArray:
    """Return ``scene`` if it follows the data model, else raise a clear error."""
    if not isinstance(scene, xr.DataArray):
        raise OrbitmlInputError(f"{what} must be an xarray.DataArray scene, got {type(scene).__name__}")
    if tuple(scene.dims) != DIMS:
        raise OrbitmlInputError(f"{what} must have dims {DIMS}, got {tuple(scene.dims)}")
    return scene


def has_geotransform(scene: xr.DataArray) -> bool:
    """True when the scene carries a CRS or a non-identity transform."""
    return scene.rio.crs is not None or scene.rio.transform() != Affine.identity()


def wavelengths(scene: xr.DataArray) -> np.ndarray | None:
    """Band centres in nm, or None when the scene has none."""
    if "wavelength" in scene.coords:
        return np.asarray(scene.coords["wavelength"].values, dtype=float)
    return None


def _invalid(values: Any, nodata: float | None) -> Any:
    """Elementwise invalid flags: non-finite floats and values equal to nodata."""
    if np.issubdtype(values.dtype, np.floating):
        bad = ~np.isfinite(values)
        if nodata is not None and np.isfinite(nodata):
            bad = bad | (values == nodata)
        return bad
    if nodata is None or (isinstance(nodata, float) and not np.isfinite(nodata)):
        return values != values  # all False, same lazy type
    return values == nodata


def valid_mask(scene: xr.DataArray, how: str = "all") -> xr.DataArray:
    """Boolean ``(y, x)`` mask of valid pixels.

    ``how="all"``: a pixel is valid when every band is finite and differs from nodata;
    ``how="any"``: when at least one band is.  Stays lazy for dask-backed scenes.
    """
    check_scene(scene)
    bad = _invalid(scene.data, scene.rio.nodata)
    bad = xr.DataArray(bad, dims=scene.dims, coords=scene.coords)
    if how == "all":
        return ~bad.any("band")
    if how == "any":
        return ~bad.all("band")
    raise ValueError(f"how must be 'all' or 'any', got {how!r}")


def empty_bands(scene: xr.DataArray) -> np.ndarray:
    """0-based indices of bands that hold no valid value in any pixel (e.g. water-vapour bands)."""
    check_scene(scene)
    bad = _invalid(scene.data, scene.rio.nodata)
    return np.flatnonzero(np.asarray(bad.all(axis=(1, 2))))


def to_float(scene: xr.DataArray, dtype: Any = np.float32) -> xr.DataArray:
    """Float copy of the scene with nodata replaced by NaN (nodata is then NaN)."""
    check_scene(scene)
    nodata = scene.rio.nodata
    out = scene.astype(dtype)
    bad = _invalid(scene.data, nodata)
    out = out.where(~xr.DataArray(bad, dims=scene.dims))
    out.attrs = dict(scene.attrs)
    out.attrs.pop("_FillValue", None)
    out = out.rio.write_transform(scene.rio.transform())
    if scene.rio.crs is not None:
        out = out.rio.write_crs(scene.rio.crs)
    return out.rio.write_nodata(np.nan, encoded=False)


def pixels(scene: xr.DataArray, mask: Any = None, how: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Valid pixels as a ``(n_pixels, n_bands)`` float array and their flat ``y*width+x`` indices.

    ``mask`` (``(y, x)`` booleans, True = use) restricts the pixels further.
    """
    valid = np.asarray(valid_mask(scene, how=how).values)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    idx = np.flatnonzero(valid.ravel())
    nb = scene.sizes["band"]
    data = np.asarray(scene.data).reshape(nb, -1)
    X = data[:, idx].T.astype(np.float64 if data.dtype == np.float64 else np.float32)
    if how == "any":
        X[_invalid(X, scene.rio.nodata)] = np.nan
    return X, idx


def from_pixels(
    values: np.ndarray,
    index: np.ndarray,
    template: xr.DataArray,
    *,
    fill: float = np.nan,
    wavelength: Sequence[float] | None = None,
    band_names: Sequence[str] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """Put ``(n_pixels, k)`` values back on the grid of ``template`` (CRS and transform kept).

    Pixels not in ``index`` get ``fill``, which becomes the nodata value of the result.
    """
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    h, w = template.sizes["y"], template.sizes["x"]
    k = values.shape[1]
    dtype = np.result_type(values.dtype, np.min_scalar_type(fill)) if np.isfinite(fill) else (
        values.dtype if np.issubdtype(values.dtype, np.floating) else np.float32
    )
    out = np.full((k, h * w), fill, dtype=dtype)
    out[:, np.asarray(index)] = values.T
    return make_scene(
        out.reshape(k, h, w),
        wavelength=wavelength,
        band_names=band_names,
        crs=template.rio.crs,
        transform=template.rio.transform(),
        nodata=fill,
        attrs=dict(template.attrs if attrs is None else attrs),
    )


def select_bands(scene: xr.DataArray, ranges_nm: Sequence[tuple[float, float]]) -> xr.DataArray:
    """Bands whose wavelength falls in any of the closed ``(lo, hi)`` nm ranges, in scene order."""
    wl = wavelengths(scene)
    if wl is None:
        raise OrbitmlInputError("the scene has no wavelength coordinate; cannot select bands by wavelength")
    keep = np.zeros(wl.size, dtype=bool)
    for lo, hi in ranges_nm:
        keep |= (wl >= lo) & (wl <= hi)
    if not keep.any():
        raise OrbitmlInputError(f"no band of the scene ({wl.min():.1f}-{wl.max():.1f} nm) lies in {list(ranges_nm)}")
    return scene.isel(band=np.flatnonzero(keep))


def bin_bands(scene: xr.DataArray, k: int) -> xr.DataArray:
    """Spectral binning: the mean of each run of ``k`` adjacent bands (a last shorter run is kept).

    The wavelength of a bin is the mean of its bands' centres; its FWHM (when known) spans the
    bin: from the lower edge of its first band to the upper edge of its last.  Nodata stays nodata
    (a bin is NaN where any of its bands is nodata; the result is float with NaN nodata).
    """
    k = int(k)
    if k < 1:
        raise OrbitmlInputError(f"bin size must be at least 1, got {k}")
    nb = scene.sizes["band"]
    if k == 1 or nb == 1:
        return scene
    starts = np.arange(0, nb, k)
    vals = to_float(scene, np.float32 if scene.dtype == np.float32 else np.float64)
    out = xr.concat([vals.isel(band=slice(a, min(a + k, nb))).mean("band", skipna=False) for a in starts], "band")
    wl = wavelengths(scene)
    coords = {}
    if wl is not None:
        coords["wavelength"] = ("band", np.array([wl[a:a + k].mean() for a in starts]))
        if "fwhm" in scene.coords:
            fw = np.asarray(scene.coords["fwhm"].values, float)
            lo = np.array([wl[a] - fw[a] / 2 for a in starts])
            hi = np.array([wl[min(a + k, nb) - 1] + fw[min(a + k, nb) - 1] / 2 for a in starts])
            coords["fwhm"] = ("band", hi - lo)
    out = out.assign_coords(band=np.arange(1, len(starts) + 1), **coords)
    out.attrs = dict(scene.attrs)
    if scene.rio.crs is not None:
        out = out.rio.write_crs(scene.rio.crs)
    out = out.rio.write_transform(scene.rio.transform())
    return out.rio.write_nodata(np.nan, encoded=False).transpose("band", "y", "x")
