"""CRISM browse products: three summary parameters stretched into an RGB composite.

:data:`BROWSE_PRODUCTS` holds the 18 products of the HyPyRameter browse table (the file
``crism/browse_products.csv`` of the shared test data, Viviano-Beck 2014 style; the tests compare
these definitions with that file) and :data:`EXTRA_PRODUCTS` a few Viviano-Beck 2014 products the
table lacks.  PHY follows the paper (R = D2300, G = D2200, B = BD1900r2): the CSV has R and G
swapped (:data:`CSV_DIFFERENCES`).  Elsewhere the CSV's choices stand (CR2's blue is BDCARB here,
CINDEX2 in the paper; TRU uses R637/R550/R463 here, R600/R530/R440 in the paper); IRA is R1330 as
in the paper and CAT.  See ``docs/crism-params.md``.

Each channel is stretched linearly to 1..255 between fixed limits (when given for that parameter)
or between the 0.1 and 99.9 percentiles of its finite values; 0 is kept for invalid pixels, so the
GeoTIFF carries nodata = 0 and the PNG shows them black.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from orbitml.crism.params_table import canonical_name
from orbitml.errors import OrbitmlInputError
from orbitml.io.atomic import atomic_path

__all__ = ["BROWSE_PRODUCTS", "EXTRA_PRODUCTS", "ALL_PRODUCTS", "DEFAULT_PERCENTILES", "resolve_products",
           "product_parameters", "stretch_channel", "browse_rgb", "write_browse"]

# name: (red, green, blue) — the HyPyRameter browse table
BROWSE_PRODUCTS: dict[str, tuple[str, str, str]] = {
    "BIO": ("BD1200", "BD670", "D700"),
    "CR2": ("MIN2295_2480", "MIN2345_2537", "BDCARB"),
    "FAL": ("R2529", "R1506", "R1080"),
    "FM2": ("BD530_2", "BD920_2", "BDI1000VIS"),
    "FM3": ("BD670", "BD875", "BD905"),
    "HEM": ("BD530_2", "BD670", "BD875"),
    "HYD": ("SINDEX2", "BD2100_2", "BD1900_2"),
    "HYD2": ("BD1200", "BD1450", "BD1900r2"),
    "HYD3": ("BA1200", "BA1450", "BA1900"),
    "HYS": ("MIN2250", "BD2250", "BD1900r2"),
    "MAF": ("OLINDEX3", "LCPINDEX2", "HCPINDEX2"),
    "PAL": ("BD2210_2", "BD2190", "BD2165"),
    "PFM": ("BD2355", "D2300", "BD2290"),
    "PHY": ("D2300", "D2200", "BD1900r2"),  # Viviano-Beck 2014; the CSV swaps R and G (see CSV_DIFFERENCES)
    "PLG": ("BD1300", "RPEAK1", "LCPINDEX2"),
    "SED": ("BDCARB", "BD2100_3", "GINDEX"),
    "SUL": ("GINDEX", "SINDEX2", "BD2265"),
    "TRU": ("R637", "R550", "R463"),
}

# Viviano-Beck 2014 products absent from the table above
EXTRA_PRODUCTS: dict[str, tuple[str, str, str]] = {
    "ICE": ("BD1900_2", "BD1500_2", "BD1435"),
    "IC2": ("R3920", "BD1500_2", "BD1435"),
    "IRA": ("R1330", "R1330", "R1330"),  # Viviano-Beck 2014 and CAT: R1330
    "VNA": ("R770", "R770", "R770"),
}

ALL_PRODUCTS: dict[str, tuple[str, str, str]] = {**BROWSE_PRODUCTS, **EXTRA_PRODUCTS}

# where we follow Viviano-Beck 2014 rather than the HyPyRameter CSV: product -> the CSV's channels
CSV_DIFFERENCES: dict[str, tuple[str, str, str]] = {"PHY": ("D2200", "D2300", "BD1900r2")}

DEFAULT_PERCENTILES = (0.1, 99.9)


def resolve_products(names: Sequence[str] | str | None) -> list[str]:
    """Upper-case product names (comma-separated string accepted); None = the HyPyRameter table."""
    if names is None:
        return list(BROWSE_PRODUCTS)
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out = []
    for n in names:
        key = str(n).strip().upper()
        if key not in ALL_PRODUCTS:
            raise OrbitmlInputError(f"unknown browse product {n!r}; known: {', '.join(ALL_PRODUCTS)}")
        if key not in out:
            out.append(key)
    return out


def product_parameters(products: Sequence[str]) -> list[str]:
    """The parameters (canonical names, no repeats) the given products need."""
    out: list[str] = []
    for prod in resolve_products(products):
        for p in ALL_PRODUCTS[prod]:
            key = canonical_name(p) or p
            if key not in out:
                out.append(key)
    return out


def stretch_channel(
    values: np.ndarray,
    limits: tuple[float, float] | None = None,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
) -> tuple[np.ndarray, tuple[float, float]]:
    """Linear stretch to uint8 1..255 between ``limits`` or the given percentiles; NaN -> 0.

    Returns the channel and the (low, high) limits used.
    """
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    out = np.zeros(v.shape, dtype=np.uint8)
    if not ok.any():
        return out, (float("nan"), float("nan"))
    if limits is None:
        lo, hi = (float(x) for x in np.percentile(v[ok], percentiles))
    else:
        lo, hi = float(limits[0]), float(limits[1])
    if not hi > lo:
        out[ok] = 128
        return out, (lo, hi)
    scaled = np.clip((v[ok] - lo) / (hi - lo), 0.0, 1.0)
    out[ok] = (1.0 + np.round(scaled * 254.0)).astype(np.uint8)
    return out, (lo, hi)


def _layers(params) -> Mapping[str, np.ndarray]:
    """name -> (y, x) array from a parameter scene (band_name coordinate) or a mapping."""
    if isinstance(params, Mapping):
        return {(canonical_name(k) or k): np.asarray(v) for k, v in params.items()}
    if "band_name" not in params.coords:
        raise OrbitmlInputError("a parameter scene needs band names (see crism.params.summary_parameters)")
    names = [str(n) for n in params.coords["band_name"].values]
    data = np.asarray(params.values)
    return {(canonical_name(n) or n): data[i] for i, n in enumerate(names)}


def browse_rgb(
    params,
    product: str,
    *,
    limits: Mapping[str, tuple[float, float]] | None = None,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
) -> tuple[np.ndarray, list[tuple[str, tuple[float, float]]]]:
    """(3, y, x) uint8 RGB of one product and ``[(parameter, (low, high)), ...]`` per channel.

    ``params``: a parameter scene from :func:`~orbitml.crism.params.summary_parameters` or a mapping
    of parameter name -> (y, x) array.  ``limits`` fixes the stretch of named parameters.
    """
    prod = resolve_products([product])[0]
    layers = _layers(params)
    fixed = {(canonical_name(k) or k): v for k, v in (limits or {}).items()}
    channels, used = [], []
    for name in ALL_PRODUCTS[prod]:
        key = canonical_name(name) or name
        if key not in layers:
            raise OrbitmlInputError(f"browse product {prod} needs parameter {key}, which was not computed")
        if not np.isfinite(layers[key]).any():
            warnings.warn(f"browse product {prod}: parameter {key} has no valid value; its channel is black",
                          RuntimeWarning, stacklevel=2)
        ch, lim = stretch_channel(layers[key], fixed.get(key), percentiles)
        channels.append(ch)
        used.append((key, lim))
    return np.stack(channels), used


def write_browse(
    params,
    product: str,
    outdir: str | os.PathLike,
    *,
    formats: Sequence[str] = ("png", "tif"),
    overwrite: bool = False,
    limits: Mapping[str, tuple[float, float]] | None = None,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    stem: str | None = None,
) -> dict[str, Path]:
    """Write one browse product as an RGB PNG and/or a 3-band uint8 GeoTIFF (CRS, transform, nodata 0).

    ``params`` must be a parameter scene for the GeoTIFF (it carries the georeferencing).
    Returns ``{format: path}``.
    """
    from PIL import Image

    prod = resolve_products([product])[0]
    rgb, used = browse_rgb(params, prod, limits=limits, percentiles=percentiles)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    stem = stem or prod
    written: dict[str, Path] = {}
    for fmt in formats:
        fmt = fmt.lower()
        if fmt == "png":
            path = outdir / f"{stem}.png"
            with atomic_path(path, overwrite=overwrite) as tmp:
                Image.fromarray(np.moveaxis(rgb, 0, -1), mode="RGB").save(tmp, format="PNG")
        elif fmt in ("tif", "gtiff"):
            path = outdir / f"{stem}.tif"
            _write_rgb_gtiff(rgb, params, path, overwrite, prod, used)
        else:
            raise OrbitmlInputError(f"unknown browse format {fmt!r}; expected png or tif")
        written[fmt] = path
    return written


def _write_rgb_gtiff(rgb: np.ndarray, params, path: Path, overwrite: bool, prod: str, used: list) -> None:
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.errors import NotGeoreferencedWarning

    if isinstance(params, Mapping):
        raise OrbitmlInputError("a GeoTIFF browse product needs a parameter scene (for CRS and transform)")
    _, h, w = rgb.shape
    profile = {"driver": "GTiff", "count": 3, "height": h, "width": w, "dtype": "uint8", "nodata": 0,
               "transform": params.rio.transform(), "photometric": "RGB", "compress": "deflate",
               "interleave": "pixel"}
    if params.rio.crs is not None:
        profile["crs"] = params.rio.crs
    with atomic_path(path, overwrite=overwrite) as tmp, rasterio.Env(GDAL_PAM_ENABLED="NO"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **profile) as ds:
                ds.write(rgb)
                ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
                for i, (name, (lo, hi)) in enumerate(used, start=1):
                    ds.set_band_description(i, name)
                    ds.update_tags(i, parameter=name, stretch_low=f"{lo:.8g}", stretch_high=f"{hi:.8g}")
                ds.update_tags(BROWSE_PRODUCT=prod, STRETCH="linear to 1..255; 0 = no data")
