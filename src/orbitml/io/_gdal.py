"""Pixels through rasterio/GDAL: GeoTIFF/COG, JPEG2000, ISIS3, PDS4, ENVI, anything GDAL reads."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rioxarray
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from orbitml.errors import OrbitmlInputError

# ISIS3 special pixel values (ISIS SpecialPixel.h): NULL, LRS, LIS, HIS, HRS
ISIS_SPECIAL = {
    "uint8": (0, 0, 0, 255, 255),
    "int16": (-32768, -32767, -32766, -32765, -32764),
    "uint16": (0, 1, 2, 65534, 65535),
    # float32: NULL..HRS are 0xFF7FFFFB..0xFF7FFFFF, all <= -3.4028226e38
    "float32": (np.float32(-3.40282265508890445e38),),
}


def open_dataset(path: Path) -> rasterio.DatasetReader:
    from orbitml.io.integrity import check_gdal_path, check_gtiff_blocks, check_jpeg2000

    check_gdal_path(Path(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(path)
    except RasterioIOError as exc:
        msg = str(exc).replace(str(path), "").strip(" :'")
        raise OrbitmlInputError(f"cannot read as a raster image ({msg or 'unsupported format'})", path) from exc
    try:
        if ds.driver == "GTiff":
            check_gtiff_blocks(ds, Path(path))
        elif ds.driver.startswith("JP2") and Path(path).is_file():
            check_jpeg2000(Path(path))
    except BaseException:
        ds.close()
        raise
    return ds


def read_gdal(path: Path, chunks: Any = None, isis: bool = False) -> tuple[Any, dict]:
    """Return (data array (band, y, x), facts) where facts has crs, transform, nodata, descriptions, tags."""
    with open_dataset(path) as ds:
        facts = {
            "driver": ds.driver,
            "crs": ds.crs,
            "transform": ds.transform,
            "nodata": ds.nodata,
            "descriptions": list(ds.descriptions),
            "tags": ds.tags(),
            "band_tags": [ds.tags(i) for i in range(1, ds.count + 1)],
            "dtype": ds.dtypes[0],
            "shape": (ds.count, ds.height, ds.width),
        }
        start = _isis_attached(Path(path)) if isis else None
        if start is not None:
            from orbitml.io.integrity import check_raw_size

            check_raw_size(Path(path), facts["shape"], facts["dtype"], "ISIS3", offset=start)
        if chunks is None:
            from orbitml.io.integrity import check_raster_load

            check_raster_load(facts["shape"], facts["dtype"], Path(path))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    data = ds.read()
            except RasterioIOError as exc:
                raise OrbitmlInputError(read_error_reason(exc), path) from exc
    if chunks is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            if chunks == "auto":
                chunks = {"band": -1, "y": "auto", "x": "auto"}
            elif isinstance(chunks, tuple | list):
                chunks = dict(zip(("band", "y", "x"), chunks, strict=True))
            elif isinstance(chunks, int):
                chunks = {"band": -1, "y": chunks, "x": chunks}
            da = rioxarray.open_rasterio(path, chunks=chunks, lock=False, masked=False, mask_and_scale=False)
        data = da.data
    if isis and facts["dtype"] in ISIS_SPECIAL:
        special = np.array(ISIS_SPECIAL[facts["dtype"]], dtype=facts["dtype"])
        null = special[0]
        if facts["dtype"] == "float32":
            # every ISIS float special pixel is below the valid range (<= -3.40282e38 region)
            lo = np.float32(-3.4028226e38)
            bad = data <= lo
        else:
            bad = np.isin(data, special)
        data = np.where(bad, null, data) if chunks is None else _dask_where(bad, null, data)
        facts["nodata"] = float(null) if facts["dtype"] == "float32" else int(null)
    return data, facts


def _isis_attached(path: Path) -> int | None:
    """Where the pixels start (bytes) when they follow the label in the same file; None for ``^Core = <file>``."""
    import re

    with open(path, "rb") as fh:
        head = fh.read(65536).decode("latin-1")
    m = re.search(r"\^Core\s*=\s*(\S+)", head)
    if m is not None and not m.group(1).isdigit():
        return None
    core = re.search(r"Object\s*=\s*Core(.*?)End_Object", head, flags=re.S | re.I)
    start = re.search(r"StartByte\s*=\s*(\d+)", core.group(1)) if core else None
    return int(start.group(1)) - 1 if start else 0  # StartByte counts from 1


def read_error_reason(exc: BaseException) -> str | None:
    """GDAL's own words for a failed pixel read (they name the file), or None when ``exc`` is not one."""
    if not isinstance(exc, RasterioIOError):
        return None
    msgs = []
    c: BaseException | None = exc
    while c is not None and len(msgs) < 8:
        msgs.append(" ".join(str(c).split()))
        c = c.__cause__ or c.__context__
    detail = next((m for m in msgs[1:] if m), msgs[0])
    return f"pixel data cannot be read ({detail}); the file may be truncated or damaged"


def _dask_where(bad, null, data):
    import dask.array as da

    return da.where(bad, null, data).astype(data.dtype)
