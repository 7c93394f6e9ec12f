"""FITS images through astropy: choose the HDU, BZERO/BSCALE applied, key header facts kept."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError

FACT_KEYS = {
    "instrument": ("INSTRUME", "DETECTOR"),
    "telescope": ("TELESCOP",),
    "object": ("OBJECT",),
    "date_obs": ("DATE-OBS", "DATE_OBS", "DATE"),
    "exposure_s": ("EXPTIME", "EXPOSURE", "ITIME"),
    "units": ("BUNIT",),
    "product_id": ("DATALAB", "FILENAME", "ORIGNAME"),
}


def _shape(h) -> tuple[int, ...]:
    """An image HDU's data shape from its header (NAXISn), without reading the data."""
    n = int(h.header.get("NAXIS", 0) or 0)
    return tuple(int(h.header.get(f"NAXIS{k}", 0) or 0) for k in range(n, 0, -1))


def _image_hdus(hdul) -> list[int]:
    return [i for i, h in enumerate(hdul) if getattr(h, "is_image", False) and len(_shape(h)) >= 2
            and all(v > 0 for v in _shape(h))]


def read_fits(path: Path, hdu: int | str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Return (data as (band, y, x) or (y, x), facts) for one image HDU.

    ``hdu`` is an index or an EXTNAME; by default the first HDU holding a 2-D or 3-D image.
    """
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            hdul.verify("silentfix")
    except Exception as exc:  # astropy raises OSError/ValueError/VerifyError for corrupt files
        raise OrbitmlInputError(f"not a readable FITS file ({exc})", path) from exc
    with hdul:
        try:
            candidates = _image_hdus(hdul)
        except Exception as exc:
            raise OrbitmlInputError(f"FITS data cannot be read; the file may be truncated ({exc})", path) from exc
        if hdu is None:
            if not candidates:
                raise OrbitmlInputError("no image HDU with 2-D or 3-D data in this FITS file", path)
            index = candidates[0]
        else:
            try:
                index = hdul.index_of(hdu) if isinstance(hdu, str) else int(hdu)
                h = hdul[index]
            except (KeyError, IndexError) as exc:
                names = [f"{i}:{x.name}" for i, x in enumerate(hdul)]
                raise OrbitmlInputError(f"HDU {hdu!r} not found; the file has {', '.join(names)}", path) from exc
            if index not in candidates:
                raise OrbitmlInputError(f"HDU {hdu!r} holds no 2-D/3-D image", path)
        h = hdul[index]
        from orbitml.io.integrity import check_raster_load

        scaled = h.header.get("BSCALE", 1) != 1 or h.header.get("BZERO", 0) != 0
        check_raster_load(_shape(h), np.float64 if scaled else np.dtype(f"u{abs(int(h.header['BITPIX'])) // 8}"),
                          path, "FITS images are read whole: cut a section first (e.g. astropy Cutout2D)")
        try:
            data = np.array(h.data)  # BZERO/BSCALE applied by astropy
        except Exception as exc:
            raise OrbitmlInputError(f"FITS data cannot be read; the file may be truncated ({exc})", path) from exc
        header = h.header
        primary = hdul[0].header
        facts: dict[str, Any] = {"hdu": index, "extname": h.name, "hdus": [x.name for x in hdul]}
        for attr, keys in FACT_KEYS.items():
            for k in keys:
                v = header.get(k, primary.get(k))
                if v not in (None, ""):
                    facts[attr] = v
                    break
        blank = header.get("BLANK")
        facts["nodata"] = None
        if blank is not None and np.issubdtype(data.dtype, np.integer):
            facts["nodata"] = int(blank) * header.get("BSCALE", 1) + header.get("BZERO", 0)
        facts["header"] = {k: header[k] for k in header if k and k not in ("COMMENT", "HISTORY")}
    if data.ndim > 3:
        raise OrbitmlInputError(f"FITS HDU {index} has {data.ndim} dimensions; expected 2 or 3", path)
    if data.dtype.byteorder not in ("=", "|"):
        data = data.astype(data.dtype.newbyteorder("="))
    return data, facts
