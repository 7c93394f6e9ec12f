"""The per-frame detection product ``<out>/<frame_stem>.cosmic.fits`` (the cosmic workflow's contract).

HDUs: PRIMARY (header facts: ORBSRC, EXPTIME, DATE-OBS, GAIN, RDNOISE, PIXSIZE, INSTRUME, DETMETH,
ORBVER, ORBGAINS), ``SCI`` (overscan-removed, trimmed frame in ADU, float32), ``CLEAN`` (hits replaced
by a local median, float32), ``MASK`` (uint8, 1 = cosmic-ray pixel) and, for the U-Net, ``PROB``
(float32).  Energy of a hit in electrons = sum over its pixels of (SCI - CLEAN) * GAIN.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from orbitml import __version__
from orbitml.cosmic.detect import Detection
from orbitml.cosmic.ingest import Frame
from orbitml.errors import OrbitmlInputError
from orbitml.io.atomic import atomic_path

SUFFIX = ".cosmic.fits"


def product_name(frame_path: str | os.PathLike) -> str:
    """``<frame_stem>.cosmic.fits``; compound suffixes such as ``.fits.gz`` are stripped whole."""
    name = Path(frame_path).name
    stem = re.sub(r"(\.(fits|fit|fts)(\.gz)?|\.(img|lbl))$", "", name, flags=re.IGNORECASE)
    return stem + SUFFIX


def write_product(frame: Frame, det: Detection, outdir: str | os.PathLike, overwrite: bool = False,
                  extra: dict[str, Any] | None = None) -> Path:
    """Write the ``.cosmic.fits`` product for one frame atomically; returns its path."""
    from astropy.io import fits

    path = Path(outdir) / product_name(frame.path)
    hdr = fits.Header()
    hdr["ORBSRC"] = (str(frame.path), "source frame")
    hdr["EXPTIME"] = (frame.exptime if frame.exptime is not None else -1.0, "[s] exposure (-1 = unknown)")
    hdr["DATE-OBS"] = (frame.time or "", "exposure start, UTC")
    hdr["GAIN"] = (frame.gain, "[e-/ADU]")
    hdr["RDNOISE"] = (frame.read_noise, "[e-] read noise")
    hdr["PIXSIZE"] = (frame.pixel_size_um, "[um] effective pixel pitch")
    hdr["INSTRUME"] = (frame.instrument_label[:68], "instrument")
    hdr["ORBINST"] = (frame.instrument, "orbitml instrument defaults used")
    hdr["DETMETH"] = (det.method, "lacosmic | unet | stack")
    hdr["ORBVER"] = (__version__, "orbitml version")
    hdr["ORBGAINS"] = ({"header": "header", "override": "override"}.get(frame.sources.get("gain"), "default"),
                       "where GAIN came from")
    hdr["ORBRNS"] = (frame.sources.get("read_noise", "default"), "where RDNOISE came from")
    hdr["SRCHDU"] = (frame.hdu[:68], "HDU read from the source")
    hdr["BIASLEV"] = (frame.bias_level, "[ADU] mean overscan level removed")
    hdr["SATURATE"] = (frame.saturation_adu if np.isfinite(frame.saturation_adu) else -1.0,
                       "[ADU] saturation in SCI units")
    hdr["NCRPIX"] = (int(det.mask.sum()), "cosmic-ray pixels")
    hdr["NCRREG"] = (det.n_regions, "8-connected cosmic-ray regions")
    for k, v in {**det.params, **(extra or {})}.items():
        if isinstance(v, (int, float, str, bool)) and len(k) <= 8 and k.upper() not in hdr:
            hdr[k.upper()[:8]] = v if not isinstance(v, str) else v[:68]
    for note in frame.notes:
        hdr.add_history(note[:72])
    hdus = [fits.PrimaryHDU(header=hdr),
            fits.ImageHDU(frame.data.astype(np.float32), name="SCI"),
            fits.ImageHDU(det.clean.astype(np.float32), name="CLEAN"),
            fits.ImageHDU(det.mask.astype(np.uint8), name="MASK")]
    if det.prob is not None:
        hdus.append(fits.ImageHDU(det.prob.astype(np.float32), name="PROB"))
    with atomic_path(path, overwrite=overwrite) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return path


def read_product(path: str | os.PathLike) -> dict[str, Any]:
    """``{"header": dict, "sci": ..., "clean": ..., "mask": bool array, "prob": array | None}``."""
    from astropy.io import fits

    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            names = [h.name for h in hdul]
            missing = [n for n in ("SCI", "CLEAN", "MASK") if n not in names]
            if missing:
                raise OrbitmlInputError(f"not a cosmic product: missing HDU(s) {', '.join(missing)}", path)
            return {"header": dict(hdul[0].header), "sci": hdul["SCI"].data.astype(np.float32),
                    "clean": hdul["CLEAN"].data.astype(np.float32), "mask": hdul["MASK"].data.astype(bool),
                    "prob": hdul["PROB"].data.astype(np.float32) if "PROB" in names else None}
    except OrbitmlInputError:
        raise
    except FileNotFoundError:
        raise OrbitmlInputError("no such file", path) from None
    except Exception as exc:
        raise OrbitmlInputError(f"not a readable FITS product: {exc}", path) from None
