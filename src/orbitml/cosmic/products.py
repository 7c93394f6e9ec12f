"""The per-frame detection product ``<out>/<frame_stem>.cosmic.fits`` (the cosmic workflow's contract).

HDUs: PRIMARY (header facts: ORBSRC, EXPTIME, DATE-OBS, GAIN, RDNOISE, PIXSIZE, INSTRUME, DETMETH,
ORBVER, ORBGAINS), ``SCI`` (overscan-removed, trimmed frame in ADU, float32), ``CLEAN`` (hits replaced
by a local median, float32), ``MASK`` (uint8, 1 = cosmic-ray pixel) and, for the U-Net, ``PROB``
(float32).  Energy of a hit in electrons = sum over its pixels of (SCI - CLEAN) * GAIN.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from orbitml import __version__
from orbitml.errors import OrbitmlInputError
from orbitml.io.atomic import atomic_path

if TYPE_CHECKING:
    from orbitml.cosmic.detect import Detection
    from orbitml.cosmic.ingest import Frame

SUFFIX = ".cosmic.fits"


def product_name(frame_path: str | os.PathLike) -> str:
    """``<frame_stem>.cosmic.fits``; compound suffixes such as ``.fits.gz`` are stripped whole."""
    name = Path(frame_path).name
    stem = re.sub(r"(\.(fits|fit|fts)(\.gz)?|\.(img|lbl|png|jpg|jpeg))$", "", name, flags=re.IGNORECASE)
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
    hdr["ORBGAINS"] = ({"header": "header", "override": "override", "nominal": "nominal"}.get(
                       frame.sources.get("gain"), "default"),
                       "where GAIN came from")
    hdr["ORBRNS"] = (frame.sources.get("read_noise", "default"), "where RDNOISE came from")
    hdr["SRCHDU"] = (frame.hdu[:68], "HDU read from the source")
    hdr["BIASLEV"] = (frame.bias_level, "[ADU] mean overscan level removed")
    hdr["SATURATE"] = (frame.saturation_adu if np.isfinite(frame.saturation_adu) else -1.0,
                       "[ADU] saturation in SCI units")
    hdr["NCRPIX"] = (int(det.mask.sum()), "cosmic-ray pixels")
    hdr["NCRREG"] = (det.n_regions, "8-connected cosmic-ray regions")
    params = {**det.params, **(extra or {})}
    notice = params.pop("notice", None)
    for k, v in params.items():
        if isinstance(v, (int, float, str, bool)) and len(k) <= 8 and k.upper() not in hdr:
            hdr[k.upper()[:8]] = v if not isinstance(v, str) else v[:68]
    if notice:  # a model trained on simulated data says so in every product
        import textwrap

        hdr["ORBSIMUL"] = (True, "detector model trained on simulated data")
        for line in textwrap.wrap(str(notice), 70):
            hdr.add_comment(line)
    for note in frame.notes:
        hdr.add_history(note[:72])
    return write_product_arrays(path, frame.data, det.clean, det.mask, hdr, prob=det.prob, overwrite=overwrite)


def write_product_arrays(path: str | os.PathLike, sci_adu: np.ndarray, clean_adu: np.ndarray, mask: np.ndarray,
                         header: Any, prob: np.ndarray | None = None, overwrite: bool = False) -> Path:
    """Write a product from arrays (atomically): SCI and CLEAN in ADU, MASK, optional PROB.

    ``header`` (a dict or FITS header) gives the primary keys (ORBSRC, EXPTIME, DATE-OBS, GAIN, RDNOISE,
    PIXSIZE, INSTRUME, DETMETH, ORBGAINS, ...); ORBVER is added.
    """
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    if isinstance(header, fits.Header):
        primary.header.extend(header, update=True)
    else:
        for k, v in header.items():
            if v is not None:
                primary.header[k] = v
    primary.header["ORBVER"] = (__version__, "orbitml version")
    hdus = [primary, fits.ImageHDU(np.asarray(sci_adu, np.float32), name="SCI"),
            fits.ImageHDU(np.asarray(clean_adu, np.float32), name="CLEAN"),
            fits.ImageHDU(np.asarray(mask).astype(np.uint8), name="MASK")]
    if prob is not None:
        hdus.append(fits.ImageHDU(np.asarray(prob, np.float32), name="PROB"))
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return path


@dataclass
class Product:
    path: Path
    frame: str
    sci: np.ndarray
    clean: np.ndarray
    mask: np.ndarray
    header: dict
    prob: np.ndarray | None = None


def frame_name(path: str | os.PathLike) -> str:
    name = Path(path).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else Path(path).stem


def read_product(path: str | os.PathLike) -> Product:
    """Read one detection product; any problem is an :class:`OrbitmlInputError` naming the file."""
    from astropy.io import fits

    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            names = [h.name for h in hdul]
            missing = [n for n in ("SCI", "CLEAN", "MASK") if n not in names]
            if missing:
                raise OrbitmlInputError(f"not a cosmic detection product: no {', '.join(missing)} HDU "
                                        f"(HDUs: {', '.join(names)})", path)
            sci = np.asarray(hdul["SCI"].data, dtype=np.float32)
            clean = np.asarray(hdul["CLEAN"].data, dtype=np.float32)
            mask = np.asarray(hdul["MASK"].data) != 0
            prob = np.asarray(hdul["PROB"].data, dtype=np.float32) if "PROB" in names else None
            hdr = dict(hdul[0].header)
    except OrbitmlInputError:
        raise
    except FileNotFoundError:
        raise OrbitmlInputError("no such file", path) from None
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError... on damaged files
        raise OrbitmlInputError(f"cannot read FITS product ({type(exc).__name__}: {exc})", path) from exc
    if sci.ndim != 2 or sci.shape != clean.shape or sci.shape != mask.shape:
        raise OrbitmlInputError(f"SCI {sci.shape}, CLEAN {clean.shape} and MASK {mask.shape} must be "
                                "2-D images of one shape", path)
    return Product(path=path, frame=frame_name(path), sci=sci, clean=clean, mask=mask, header=hdr, prob=prob)
