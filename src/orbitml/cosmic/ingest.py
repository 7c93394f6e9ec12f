"""Read CCD frames for cosmic-ray work: FITS (any HDU), PDS3 EDR images, LASCO FITS, PNG/JPEG browse
images (nominal gain, energies not physical); frame lists.

Every reader returns a :class:`Frame`: the overscan-removed, trimmed data in ADU (float32) plus the
detector facts detection and rates need (gain, read noise, exposure, time, pixel size, saturation),
each with where it came from (``"header"``, ``"default"`` from the instrument table, or
``"override"`` from the caller / command line).  A fact that had to fall back to a default is also
listed in :attr:`Frame.notes` so the CLI can say so.

FITS sections (BIASSEC, TRIMSEC, DATASEC) are 1-based and inclusive, ``[x1:x2,y1:y2]`` with x the
column (NAXIS1) and y the row (NAXIS2), as IRAF writes them.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError

# Nominal detector facts per instrument, used when a header lacks the keyword.  Values for GMOS and the
# SAAO 1.0 m are the ones published with the test frames; LASCO and MDIS are nominal figures from the
# instrument descriptions (1024x1024 CCDs, 21 um and 14 um pixels) -- pass --gain/--read-noise for science.
INSTRUMENTS: dict[str, dict[str, Any]] = {
    "gmos": {"gain": 1.933, "read_noise": 4.24, "pixel_size_um": 15.0, "saturation_adu": 65535.0},
    "saao1m": {"gain": 1.9, "read_noise": 5.0, "pixel_size_um": 24.0, "saturation_adu": 65535.0},
    "lasco-c2": {"gain": 20.1, "read_noise": 9.0, "pixel_size_um": 21.0, "saturation_adu": 16383.0},
    "lasco-c3": {"gain": 20.1, "read_noise": 9.0, "pixel_size_um": 21.0, "saturation_adu": 16383.0},
    "mdis": {"gain": 22.0, "read_noise": 20.0, "pixel_size_um": 14.0, "saturation_adu": 4095.0},
    "hirise": {"gain": 1.0, "read_noise": 5.0, "pixel_size_um": 12.0, "saturation_adu": 255.0},
    "generic": {"gain": 1.0, "read_noise": 5.0, "pixel_size_um": 15.0, "saturation_adu": None},
}

BROWSE_SUFFIXES = (".png", ".jpg", ".jpeg")
FRAME_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".img", ".lbl") + BROWSE_SUFFIXES
# 8-bit browse images carry no detector facts: this nominal gain (e-/DN) is used unless one is given, and the
# read noise is measured on the image (the pixel noise, taken as all read noise).  Energies are not physical.
BROWSE_GAIN = 1.0

_GAIN_KEYS = ("GAIN", "EGAIN", "CCDGAIN", "GAIN_E")
_RN_KEYS = ("RDNOISE", "READNOIS", "READNOISE", "RON", "RDNOISE1")
_EXP_KEYS = ("EXPTIME", "EXPOSURE", "ITIME", "EXP_TIME")
_PIX_KEYS = ("PIXSIZE", "PIXSIZE1", "XPIXSZ", "DETPIXSZ")
_SAT_KEYS = ("SATURATE", "SATLEVEL", "SATUR")


@dataclass
class Frame:
    """One CCD frame in ADU, overscan removed and trimmed, with its detector facts."""

    path: Path
    data: np.ndarray  # (y, x) float32 ADU
    gain: float  # e-/ADU
    read_noise: float  # e- rms
    exptime: float | None  # s
    time: str | None  # ISO 8601 UTC of the exposure start
    pixel_size_um: float  # effective (binned) pixel pitch
    instrument: str  # key into INSTRUMENTS
    saturation_adu: float  # in the units of ``data`` (after bias removal)
    bad: np.ndarray  # bool, non-finite / missing / saturated pixels
    sources: dict[str, str] = field(default_factory=dict)  # fact -> header | default | override
    notes: list[str] = field(default_factory=list)
    background: np.ndarray | None = None  # provided sky model in ADU (e.g. GMOS SKYFIT)
    variance: np.ndarray | None = None  # provided variance in ADU^2
    hdu: str = ""
    instrument_label: str = ""  # the instrument string as the file names it
    bias_level: float = 0.0

    @property
    def data_e(self) -> np.ndarray:
        """The frame in electrons."""
        return self.data * np.float32(self.gain)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- helpers
_SECTION = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")


def parse_section(text: str, shape: tuple[int, int] | None = None, path=None) -> tuple[slice, slice]:
    """``"[x1:x2,y1:y2]"`` (1-based, inclusive, x = column) -> numpy ``(rows, cols)`` slices.

    Reversed ranges are accepted and normalised; a section outside ``shape`` is an input error.
    """
    m = _SECTION.match(str(text))
    if not m:
        raise OrbitmlInputError(f"cannot parse FITS section {text!r} (expected '[x1:x2,y1:y2]')", path)
    x1, x2, y1, y2 = (int(g) for g in m.groups())
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    if x1 < 1 or y1 < 1 or (shape is not None and (y2 > shape[0] or x2 > shape[1])):
        raise OrbitmlInputError(f"section {text!r} lies outside the {shape[1] if shape else '?'} x "
                                f"{shape[0] if shape else '?'} (columns x rows) frame", path)
    return slice(y1 - 1, y2), slice(x1 - 1, x2)


def remove_overscan(raw: np.ndarray, biassec: str | None, trimsec: str | None, path=None
                    ) -> tuple[np.ndarray, float]:
    """Subtract the overscan level and trim; returns (frame, mean bias level subtracted).

    A serial overscan (a strip spanning all rows) is fitted row by row: per-row median, then a running
    median over 9 rows so the bias model adds little noise; a parallel strip column by column; any
    other region as one robust level.
    """
    data = raw.astype(np.float32, copy=True)
    level = 0.0
    if biassec:
        rs, cs = parse_section(biassec, data.shape, path)
        ov = data[rs, cs]
        from scipy.ndimage import median_filter

        if ov.shape[0] == data.shape[0] and ov.shape[1] < data.shape[1]:
            prof = median_filter(np.median(ov, axis=1), size=min(9, ov.shape[0]), mode="nearest")
            data -= prof[:, None].astype(np.float32)
            level = float(prof.mean())
        elif ov.shape[1] == data.shape[1] and ov.shape[0] < data.shape[0]:
            prof = median_filter(np.median(ov, axis=0), size=min(9, ov.shape[1]), mode="nearest")
            data -= prof[None, :].astype(np.float32)
            level = float(prof.mean())
        else:
            level = float(np.median(ov))
            data -= np.float32(level)
    if trimsec:
        rs, cs = parse_section(trimsec, data.shape, path)
        data = data[rs, cs]
    return np.ascontiguousarray(data), level


def identify_instrument(labels: Mapping[str, Any]) -> str:
    """Instrument key from header/label strings (INSTRUME, TELESCOP, DETECTOR, INSTRUMENT_ID)."""
    text = " ".join(str(labels.get(k, "")) for k in ("INSTRUME", "TELESCOP", "DETECTOR", "INSTRUMENT_ID",
                                                      "INSTRUMENT_NAME")).upper()
    if "GMOS" in text:
        return "gmos"
    if "SAAO" in text:
        return "saao1m"
    if "LASCO" in text or "SOHO" in text:
        det = str(labels.get("DETECTOR", "")).upper()
        return "lasco-c3" if "C3" in det else "lasco-c2"
    if "MDIS" in text:
        return "mdis"
    if "HIRISE" in text:
        return "hirise"
    return "generic"


def _first(hdr: Mapping[str, Any], keys) -> tuple[str | None, Any]:
    for k in keys:
        v = hdr.get(k)
        if v is not None and str(v).strip() != "":
            return k, v
    return None, None


def _to_float(v: Any) -> float | None:
    if isinstance(v, Mapping) and "value" in v:  # pdr quantity
        v = v["value"]
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fits_time(hdr: Mapping[str, Any]) -> str | None:
    """ISO 8601 UTC start time from DATE-OBS (+ TIME-OBS / UT / UTSTART), or MJD-OBS."""
    date = hdr.get("DATE-OBS")
    if date:
        date = str(date).strip().replace("/", "-")
        if "T" not in date:
            _, t = _first(hdr, ("TIME-OBS", "UTSTART", "UT", "UTC-OBS"))
            if t:
                date = f"{date}T{str(t).strip()}"
        try:
            from astropy.time import Time

            return Time(date, scale="utc").isot
        except ValueError:
            return date
    mjd = _to_float(hdr.get("MJD-OBS"))
    if mjd is not None:
        from astropy.time import Time

        return Time(mjd, format="mjd", scale="utc").isot
    return None


def _resolve(name: str, override, header_value, default, sources: dict, notes: list, inst: str,
             key: str | None, unit: str) -> Any:
    if override is not None:
        sources[name] = "override"
        return override
    if header_value is not None:
        sources[name] = "header"
        return header_value
    sources[name] = "default"
    if default is not None:
        notes.append(f"no {name} keyword{f' ({key})' if key else ''}: using the {inst} default "
                     f"{default:g} {unit}".rstrip())
    return default


def _check_values(raw: np.ndarray, sat: float | None, path) -> None:
    finite = np.isfinite(raw)
    if not finite.any():
        raise OrbitmlInputError("every pixel is NaN/Inf: no usable data in this frame", path)
    vals = raw[finite]
    if not np.any(vals):
        raise OrbitmlInputError("every pixel is zero: an empty or dropped frame", path)
    if sat is not None and np.all(vals >= sat):
        raise OrbitmlInputError(f"every pixel is at or above the saturation level {sat:g} ADU", path)
    if vals.min() == vals.max():
        raise OrbitmlInputError(f"every pixel has the same value {vals.min():g}: not a CCD exposure", path)


def _as_2d(arr: np.ndarray, path, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim > 2:
        squeezed = arr.squeeze()
        if squeezed.ndim == 2:
            return squeezed
        raise OrbitmlInputError(f"{what} is a {arr.ndim}-D cube of shape {arr.shape}; cosmic-ray detection "
                                "needs one 2-D frame (split the cube into frames first)", path)
    if arr.ndim < 2:
        raise OrbitmlInputError(f"{what} has {arr.ndim} dimension(s); expected a 2-D frame", path)
    return arr


# ------------------------------------------------------------------------------------------------ FITS
def _pick_hdu(hdul, hdu, path):
    if hdu is not None:
        key = int(hdu) if str(hdu).isdigit() else str(hdu)
        try:
            return hdul[key], str(hdu)
        except (KeyError, IndexError):
            names = [h.name or str(i) for i, h in enumerate(hdul)]
            raise OrbitmlInputError(f"no HDU {hdu!r} (HDUs: {', '.join(names)})", path) from None
    names = [h.name.upper() for h in hdul]
    if "SCI" in names:
        return hdul["SCI"], "SCI"
    for i, h in enumerate(hdul):
        if getattr(h, "is_image", False) and h.data is not None and np.ndim(h.data) >= 2:
            return h, h.name or str(i)
    raise OrbitmlInputError("no image HDU with 2-D data in this FITS file", path)


def read_fits_frame(path, *, hdu=None, overscan: bool = True, **overrides) -> Frame:
    from astropy.io import fits

    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            hdul.verify("silentfix")
            h, hname = _pick_hdu(hdul, hdu, path)
            raw = _as_2d(h.data, path, f"HDU {hname}")  # BZERO/BSCALE applied by astropy
            header: dict[str, Any] = dict(hdul[0].header) if h is not hdul[0] else {}
            header.update(dict(h.header))
            extras = {}
            for name, attr in (("SKYFIT", "background"), ("BKG", "background"), ("VAR", "variance")):
                if name in [x.name.upper() for x in hdul] and hdul[name] is not h:
                    arr = np.asarray(hdul[name].data, dtype=np.float32)
                    if arr.shape == raw.shape:
                        extras.setdefault(attr, arr)
    except OrbitmlInputError:
        raise
    except FileNotFoundError:
        raise OrbitmlInputError("no such file", path) from None
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError... for broken files
        raise OrbitmlInputError(f"not a readable FITS file (corrupt or truncated?): {exc}", path) from None
    bits = int(header.get("BITPIX", -32))
    dtype_sat = float(2 ** bits - 1) if bits in (8, 16) else None
    if bits == 16 and header.get("BZERO", 0) == 0:
        dtype_sat = 32767.0
    label = " ".join(str(header.get(k, "")) for k in ("INSTRUME", "DETECTOR")).strip()
    return _finish(path, raw, header, overscan=overscan, dtype_sat=dtype_sat, hdu=hname, label=label,
                   time=fits_time(header), extras=extras, **overrides)


def _finish(path, raw, header, *, overscan, dtype_sat, hdu, label, time, extras=None, gain=None,
            read_noise=None, exptime=None, pixel_size_um=None, saturation_adu=None, instrument=None,
            time_override=None, notes=None) -> Frame:
    inst = instrument or identify_instrument(header)
    if inst not in INSTRUMENTS:
        raise OrbitmlInputError(f"unknown instrument {inst!r}; known: {', '.join(INSTRUMENTS)}")
    dflt = INSTRUMENTS[inst]
    sources: dict[str, str] = {}
    notes = list(notes or [])
    gk, gv = _first(header, _GAIN_KEYS)
    rk, rv = _first(header, _RN_KEYS)
    ek, ev = _first(header, _EXP_KEYS)
    pk, pv = _first(header, _PIX_KEYS)
    sk, sv = _first(header, _SAT_KEYS)
    g = _resolve("gain", gain, _to_float(gv), dflt["gain"], sources, notes, inst, "GAIN", "e-/ADU")
    r = _resolve("read_noise", read_noise, _to_float(rv), dflt["read_noise"], sources, notes, inst, "RDNOISE",
                 "e-")
    e = _resolve("exptime", exptime, _to_float(ev), None, sources, notes, inst, "EXPTIME", "s")
    if e is None:
        notes.append("no exposure time (EXPTIME): rates per second cannot be computed for this frame")
    px = _resolve("pixel_size", pixel_size_um, _to_float(pv), dflt["pixel_size_um"], sources, notes, inst,
                  None, "um")
    binning = 1
    ccdsum = str(header.get("CCDSUM", "")).split()
    if len(ccdsum) == 2 and all(s.isdigit() for s in ccdsum):
        binning = int(ccdsum[0]) * int(ccdsum[1])
    elif _to_float(header.get("XBINNING")) and _to_float(header.get("YBINNING")):
        binning = int(_to_float(header["XBINNING"]) * _to_float(header["YBINNING"]))
    if header.get("ADUTOELE") and sources["gain"] != "override":
        notes.append("header has ADUTOELE (data converted to electrons by the reduction pipeline); "
                     f"gain {g:g} e-/ADU assumed anyway -- pass --gain 1 if the pixels are electrons")
    if binning > 1 and sources["pixel_size"] != "override":
        px = px * math.sqrt(binning)
    sat = _resolve("saturation", saturation_adu, _to_float(sv), dflt["saturation_adu"] or dtype_sat,
                   sources, [], inst, None, "ADU")
    t = time_override if time_override is not None else time
    sources["time"] = "override" if time_override is not None else ("header" if time else "missing")
    if not (g and g > 0):
        raise OrbitmlInputError(f"gain must be positive, got {g}", path)
    if r is None or r < 0:
        raise OrbitmlInputError(f"read noise must be >= 0, got {r}", path)
    raw = np.asarray(raw)
    _check_values(raw.astype(np.float64, copy=False), sat, path)
    rawf = raw.astype(np.float32)
    badraw = ~np.isfinite(rawf)
    if sat is not None:
        badraw |= rawf >= np.float32(sat)
    missing = _to_float(header.get("MISSING_CONSTANT"))
    if missing is not None:
        badraw |= rawf == np.float32(missing)
    if badraw.any():
        rawf[~np.isfinite(rawf)] = np.float32(np.nanmedian(rawf)) if np.isfinite(rawf).any() else 0
    biassec = header.get("BIASSEC") if overscan else None
    trimsec = header.get("TRIMSEC") or (header.get("DATASEC") if overscan else None)
    data, level = remove_overscan(rawf, biassec, trimsec, path)
    bad = badraw
    if trimsec:
        rs, cs = parse_section(trimsec, rawf.shape, path)
        bad = badraw[rs, cs]
        extras = {k: v[rs, cs] for k, v in (extras or {}).items()}
    sat_data = float(sat) - level if sat is not None else float("inf")
    return Frame(path=Path(path), data=data, gain=float(g), read_noise=float(r),
                 exptime=None if e is None else float(e), time=t, pixel_size_um=float(px), instrument=inst,
                 saturation_adu=sat_data, bad=np.ascontiguousarray(bad), sources=sources, notes=notes,
                 background=(extras or {}).get("background"), variance=(extras or {}).get("variance"),
                 hdu=hdu, instrument_label=label or inst, bias_level=level)


# ------------------------------------------------------------------------------------------------ PDS3
def read_pds3_frame(path, **overrides) -> Frame:
    """A PDS3 EDR image (attached or detached label) through pdr: MDIS 8/12-bit, HiRISE EDR, ..."""
    path = Path(path)
    from orbitml.io import open_scene
    from orbitml.io.pds3 import find_label, read_label

    # pixels through orbitml.io: the label is checked against the file (size, dimensions, sample type) and
    # may not point outside its folder; pdr reads the label's keywords
    meta = read_label(find_label(path))
    cube = np.asarray(open_scene(path).values)
    img = _as_2d(cube[0] if cube.shape[0] == 1 else cube, path, "IMAGE")

    def mg(key):
        try:
            return meta.metaget(key)
        except Exception:
            return None

    header: dict[str, Any] = {}
    for k in ("INSTRUMENT_ID", "INSTRUMENT_NAME", "INSTRUMENT_HOST_NAME"):
        header[k] = mg(k) or ""
    notes: list[str] = []
    exp = None
    for key, scale in (("EXPOSURE_DURATION", 1e-3), ("MESS:EXPOSURE", 1e-3), ("SCAN_EXPOSURE_DURATION", 1e-6)):
        v = mg(key)
        if isinstance(v, Mapping) and "units" in v:
            unit = str(v["units"]).upper()
            scale = {"MS": 1e-3, "S": 1.0, "SEC": 1.0, "MICROSECONDS": 1e-6, "US": 1e-6}.get(unit, scale)
        f = _to_float(v)
        if f is not None:
            exp = f * scale
            break
    header["EXPTIME"] = exp
    bits = _to_float((mg("IMAGE") or {}).get("SAMPLE_BITS")) if isinstance(mg("IMAGE"), Mapping) else None
    missing = (mg("IMAGE") or {}).get("MISSING_CONSTANT") if isinstance(mg("IMAGE"), Mapping) else None
    header["MISSING_CONSTANT"] = missing
    inst = identify_instrument(header)
    if inst == "mdis":
        comp = _to_float(mg("MESS:COMP12_8"))
        if (bits == 8 or comp) and np.nanmax(np.asarray(img, np.float64)) <= 255:
            from orbitml.simulate.ccd import decompand_sqrt

            img = decompand_sqrt(np.asarray(img))
            bits = 12
            if _to_float(missing) is not None and 0 <= _to_float(missing) <= 255:  # the same code, decompanded
                header["MISSING_CONSTANT"] = float(decompand_sqrt(np.array([_to_float(missing)]))[0])
            notes.append("8-bit MDIS image companded from 12 bits on board: decompanded to 12-bit DN with a "
                         "nominal square-root table (not the flight look-up table); energies are approximate")
    start = mg("START_TIME")
    time = None
    if start:
        try:
            from astropy.time import Time

            time = Time(str(start).rstrip("Z"), scale="utc").isot
        except ValueError:
            time = str(start)
    dtype_sat = float(2 ** int(bits) - 1) if bits else float(np.iinfo(img.dtype).max) \
        if np.issubdtype(img.dtype, np.integer) else None
    return _finish(path, img, header, overscan=False, dtype_sat=dtype_sat, hdu="IMAGE",
                   label=str(header["INSTRUMENT_ID"]), time=time, notes=notes, **overrides)


# ------------------------------------------------------------------------------------ browse images
def read_browse_frame(path, *, gain=None, read_noise=None, instrument=None, **overrides) -> Frame:
    """An 8-bit (or 16-bit) PNG/JPEG browse image as a frame (colour is averaged to grey).

    No detector facts come with such an image: the gain is :data:`BROWSE_GAIN` unless given, the read noise
    is measured on the image (robust pixel noise) unless given, and a note says the energies are not physical.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = np.asarray(im, dtype=np.float32)
            elif mode in ("L", "LA"):
                arr = np.asarray(im.convert("L"), dtype=np.float32)
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.float32).mean(axis=2)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise OrbitmlInputError(f"not a readable PNG/JPEG image: {exc}", path) from None
    notes = [f"browse image ({mode}): display DN, not calibrated counts -- energies and rates per electron "
             "are not physical"]
    if mode not in ("L", "LA", "I;16", "I;16B", "I;16L", "I", "F"):
        notes.append(f"colour image ({mode}): the mean of its channels is used")
    from orbitml.simulate.ccd import robust_noise

    header: dict[str, Any] = {"INSTRUME": instrument or ""}
    g = BROWSE_GAIN if gain is None else gain
    if gain is None:
        notes.append(f"no gain for a browse image: using the nominal {BROWSE_GAIN:g} e-/DN (pass --gain to set one)")
    if read_noise is None:
        rn = max(robust_noise(arr) * g, 0.1)
        header["RDNOISE"] = rn
        notes.append(f"read noise measured on the image: {rn:.3g} e- at the nominal gain")
    top = 65535.0 if mode.startswith("I") else 255.0
    fr = _finish(path, arr, header, overscan=False, dtype_sat=top, hdu="IMAGE", label=f"browse {mode}",
                 time=None, notes=notes, gain=g, read_noise=read_noise, instrument=instrument, **overrides)
    fr.sources["gain"] = "nominal" if gain is None else "override"
    if read_noise is None:
        fr.sources["read_noise"] = "measured"
    return fr


def _is_browse(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8\xff")


# ----------------------------------------------------------------------------------------- dispatch
def _is_fits(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b":
        return ".fit" in path.name.lower() or ".fts" in path.name.lower()
    return head == b"SIMPLE  ="


def read_frame(path, *, hdu=None, gain: float | None = None, read_noise: float | None = None,
               exptime: float | None = None, pixel_size_um: float | None = None,
               saturation_adu: float | None = None, instrument: str | None = None, time: str | None = None,
               overscan: bool = True) -> Frame:
    """Read one frame (FITS by content, else PDS3); overrides beat header values, which beat defaults."""
    path = Path(path)
    if not path.exists():
        raise OrbitmlInputError("no such file", path)
    if path.is_dir():
        raise OrbitmlInputError("is a folder; pass the frames in it (or the folder to a frame list)", path)
    kw = dict(gain=gain, read_noise=read_noise, exptime=exptime, pixel_size_um=pixel_size_um,
              saturation_adu=saturation_adu, instrument=instrument, time_override=time)
    if _is_fits(path):
        return read_fits_frame(path, hdu=hdu, overscan=overscan, **kw)
    if _is_browse(path):
        return read_browse_frame(path, **kw)
    if path.suffix.lower() in BROWSE_SUFFIXES:
        raise OrbitmlInputError("not a PNG/JPEG image: its first bytes are not a PNG or JPEG signature", path)
    if path.suffix.lower() in (".fits", ".fit", ".fts"):
        raise OrbitmlInputError("not a FITS file: it does not start with 'SIMPLE  =' (corrupt?)", path)
    return read_pds3_frame(path, **kw)


# -------------------------------------------------------------------------------------- frame lists
@dataclass
class FrameSpec:
    path: Path
    overrides: dict[str, Any] = field(default_factory=dict)


_CSV_FIELDS = {"gain": float, "read_noise": float, "exptime": float, "pixel_size_um": float,
               "saturation_adu": float, "hdu": str, "instrument": str, "time": str}


def frame_list(inputs) -> list[FrameSpec]:
    """Expand files, folders (every FITS/PDS3 file in it, sorted) and CSV lists into frame specs.

    A CSV has a ``path`` column (relative paths are relative to the CSV) and optional per-frame columns
    ``gain, read_noise, exptime, pixel_size_um, saturation_adu, hdu, instrument, time``.
    """
    specs: list[FrameSpec] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(FRAME_SUFFIXES)
                           and not f.name.lower().endswith(".cosmic.fits"))
            # a detached PDS3 label and its .img are one product: keep the label
            stems = {f.with_suffix("").name.lower() for f in found if f.suffix.lower() == ".lbl"}
            found = [f for f in found if not (f.suffix.lower() == ".img" and f.stem.lower() in stems)]
            if not found:
                raise OrbitmlInputError("folder holds no FITS or PDS3 frames", p)
            specs += [FrameSpec(f) for f in found]
        elif p.suffix.lower() == ".csv":
            specs += _read_csv_list(p)
        else:
            specs.append(FrameSpec(p))
    return specs


def _read_csv_list(p: Path) -> list[FrameSpec]:
    if not p.exists():
        raise OrbitmlInputError("no such file", p)
    with open(p, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "path" not in [f.strip() for f in reader.fieldnames]:
            raise OrbitmlInputError("frame list CSV needs a 'path' column", p)
        out = []
        for i, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if not row.get("path"):
                continue
            fp = Path(row["path"])
            fp = fp if fp.is_absolute() else p.parent / fp
            ov = {}
            for k, conv in _CSV_FIELDS.items():
                if row.get(k):
                    try:
                        ov[k] = conv(row[k])
                    except ValueError:
                        raise OrbitmlInputError(f"line {i}: column {k} = {row[k]!r} is not a number", p) from None
            out.append(FrameSpec(fp, ov))
    return out


def iter_frames(specs, **common) -> Iterator[tuple[FrameSpec, Frame | None, OrbitmlInputError | None]]:
    """Read frames one by one; a bad frame yields its error instead of stopping the batch."""
    for spec in specs:
        kw = {k: v for k, v in common.items() if v is not None}
        kw.update(spec.overrides)
        try:
            yield spec, read_frame(spec.path, **kw), None
        except OrbitmlInputError as exc:
            yield spec, None, exc
