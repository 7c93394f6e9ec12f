"""Integrity and containment checks made before any pixel is used.

- a data file must hold what its header or label promises (size, data type, byte order, band count);
- wavelengths must be finite;
- a label or VRT may only point at files in its own folder (or below it), and GDAL's virtual file
  systems (``/vsicurl/`` and the like) are off, unless the user allows more with the environment
  variable ``ORBITML_ALLOW_EXTERNAL_FILES=1`` (the CLI's ``--allow-external-files`` sets it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError

ALLOW_ENV = "ORBITML_ALLOW_EXTERNAL_FILES"

# ENVI "data type" codes -> bytes per sample (complex 6/9 are not images orbitml can use)
ENVI_BYTES = {1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 12: 2, 13: 4, 14: 8, 15: 8}
ENVI_NAMES = {6: "complex64", 9: "complex128"}
MAX_DIM = 10_000_000  # no instrument has a side of ten million pixels; a label that says so is broken


def external_allowed() -> bool:
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")


def contained(base_file: Path, target: Path, what: str = "the label") -> Path:
    """``target`` if it lies in ``base_file``'s folder or below it (or external files are allowed)."""
    if external_allowed():
        return target
    root = base_file.resolve().parent
    try:
        target.resolve().relative_to(root)
    except ValueError:
        raise OrbitmlInputError(f"{what} points at {str(target)!r}, outside its own folder; refusing to read it "
                                f"(set {ALLOW_ENV}=1 or pass --allow-external-files if you trust this file)",
                                base_file) from None
    return target


def check_pointer_name(label: Path, name: str) -> None:
    """A data-file name from a label: relative, no ``..`` out of the label's folder, no virtual file system."""
    if external_allowed():
        return
    if name.startswith("/vsi") or "://" in name:
        raise OrbitmlInputError(f"the label points at {name!r}, a network or virtual path; refusing it "
                                f"(set {ALLOW_ENV}=1 if you trust this file)", label)
    contained(label, label.parent / name)


def check_gdal_path(path: Path) -> None:
    """Refuse GDAL virtual paths and VRTs whose sources lie outside the VRT's folder."""
    s = str(path)
    if external_allowed():
        return
    if s.startswith("/vsi") or "://" in s:
        raise OrbitmlInputError(f"network and virtual paths are off (set {ALLOW_ENV}=1 to allow them)", path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return
    if head.lstrip().startswith(b"<VRTDataset"):
        import re

        text = path.read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(r"<(SourceFilename|SourceDataset)([^>]*)>([^<]*)<", text):
            attrs, name = m.group(2), m.group(3).strip()
            rel = 'relativetovrt="1"' in attrs.replace(" ", "").lower()
            target = (path.parent / name) if rel else Path(name)
            if name.startswith("/vsi") or "://" in name:
                raise OrbitmlInputError(f"the VRT reads {name!r}, a network or virtual path; refusing it "
                                        f"(set {ALLOW_ENV}=1 if you trust this file)", path)
            contained(path, target, "the VRT")


def check_dims(lines: Any, samples: Any, bands: Any, where: Path) -> tuple[int, int, int]:
    """Positive, plausible image dimensions."""
    try:
        dims = int(lines), int(samples), int(bands)
    except (TypeError, ValueError):
        raise OrbitmlInputError(f"image dimensions are not whole numbers: lines={lines!r}, samples={samples!r}, "
                                f"bands={bands!r}", where) from None
    for name, v in zip(("lines", "samples", "bands"), dims, strict=True):
        if v < 1 or v > MAX_DIM:
            raise OrbitmlInputError(f"{name} = {v} is not a valid image dimension", where)
    return dims


def check_envi(hdr: Path, header: dict[str, Any], data_file: Path) -> None:
    """The ENVI data file holds what the header promises."""
    try:
        dtype = int(header.get("data type", 0))
    except (TypeError, ValueError):
        raise OrbitmlInputError(f"data type {header.get('data type')!r} is not an ENVI type code", hdr) from None
    if dtype in ENVI_NAMES:
        raise OrbitmlInputError(f"data type {dtype} ({ENVI_NAMES[dtype]}) is complex: not an image orbitml reads",
                                hdr)
    if dtype not in ENVI_BYTES:
        raise OrbitmlInputError(f"data type {dtype} is not an ENVI data type code", hdr)
    order = str(header.get("byte order", "0")).strip()
    if order not in ("0", "1"):
        raise OrbitmlInputError(f"byte order = {order}: ENVI allows 0 (little endian) or 1 (big endian)", hdr)
    inter = str(header.get("interleave", "bsq")).strip().lower()
    if inter not in ("bsq", "bil", "bip"):
        raise OrbitmlInputError(f"interleave = {inter}: expected bsq, bil or bip", hdr)
    lines, samples, bands = check_dims(header.get("lines"), header.get("samples"), header.get("bands", 1), hdr)
    try:
        offset = int(header.get("header offset", 0) or 0)
    except (TypeError, ValueError):
        raise OrbitmlInputError(f"header offset {header.get('header offset')!r} is not a number", hdr) from None
    need = offset + lines * samples * bands * ENVI_BYTES[dtype]
    have = data_file.stat().st_size
    if have < need:
        raise OrbitmlInputError(f"data file is truncated: the header promises {lines} lines x {samples} samples x "
                                f"{bands} bands ({need} bytes), the file has {have}", data_file)


def check_finite_wavelengths(wl: np.ndarray | None, where: Path | None) -> None:
    if wl is None:
        return
    wl = np.asarray(wl, dtype=float)
    bad = ~np.isfinite(wl)
    if bad.any():
        first = (np.flatnonzero(bad)[:5] + 1).tolist()
        raise OrbitmlInputError(f"{int(bad.sum())} wavelengths are not finite numbers (bands {first}...)", where)
    if np.any(wl <= 0):
        raise OrbitmlInputError("wavelengths must be positive", where)


def check_raw_size(path: Path, shape: tuple[int, int, int], dtype: str, what: str, offset: int = 0) -> None:
    """An uncompressed single-file raster (ISIS3 attached cube) holds its pixels after ``offset`` bytes."""
    nb, h, w = shape
    need = offset + nb * h * w * np.dtype(dtype).itemsize
    have = path.stat().st_size
    if have < need:
        raise OrbitmlInputError(f"data file is truncated or its {what} label is wrong: {nb} bands x {h} lines x {w} "
                                f"samples of {dtype} need {need} bytes"
                                f"{f' (pixels from byte {offset})' if offset else ''}, the file has {have}", path)


def check_gtiff_blocks(ds, path: Path) -> None:
    """Every band's last strip or tile lies inside the file (a truncated GeoTIFF fails here, not later)."""
    size = path.stat().st_size
    try:
        bw, bh = ds.block_shapes[0][1], ds.block_shapes[0][0]
    except (IndexError, AttributeError):
        return
    nx, ny = -(-ds.width // bw), -(-ds.height // bh)
    bands = [1] if ds.interleaving is not None and ds.interleaving.name == "PIXEL" else range(1, ds.count + 1)
    for b in bands:
        for (x, y) in {(nx - 1, ny - 1), (0, 0), (nx - 1, 0), (0, ny - 1)}:
            off = ds.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=b)
            n = ds.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=b)
            if off is None or n is None:
                continue
            if int(off) + int(n) > size:
                raise OrbitmlInputError(f"GeoTIFF is truncated: band {b} block ({y}, {x}) ends at byte "
                                        f"{int(off) + int(n)}, the file has {size}", path)


_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K_SOC, _J2K_EOC = b"\xff\x4f", b"\xff\xd9"


def check_jpeg2000(path: Path) -> None:
    """A JPEG 2000 file is whole: its boxes fit in the file and its codestream ends with EOC.

    JP2 (ISO/IEC 15444-1 Annex I) is a sequence of boxes (4-byte length, 4-byte type; length 1 =
    an 8-byte length follows, 0 = to the end of the file); the ``jp2c`` box holds the codestream,
    which starts with SOC (FF4F) and must end with EOC (FFD9).  A truncated file has a box that runs
    past its end or a codestream without EOC; GDAL would open it and fail only when pixels are
    decoded.  A bare codestream (.j2k) is checked for SOC and EOC.  Reads a few bytes per box.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:2] == _J2K_SOC:
            f.seek(max(0, size - 2))
            if f.read(2) != _J2K_EOC:
                raise OrbitmlInputError("JPEG 2000 codestream is truncated (no end-of-codestream marker)", path)
            return
        if head != _JP2_SIGNATURE:
            return  # not a JP2 file: GDAL decides what it is
        pos, found = 0, False
        while pos < size:
            f.seek(pos)
            hdr = f.read(8)
            if len(hdr) < 8:
                raise OrbitmlInputError(f"JPEG 2000 file is truncated: a box header at byte {pos} is cut off", path)
            n, kind = int.from_bytes(hdr[:4], "big"), hdr[4:]
            start = 8
            if n == 1:
                ext = f.read(8)
                if len(ext) < 8:
                    raise OrbitmlInputError("JPEG 2000 file is truncated inside a box header", path)
                n, start = int.from_bytes(ext, "big"), 16
            elif n == 0:
                n = size - pos
            if n < start or pos + n > size:
                raise OrbitmlInputError(f"JPEG 2000 file is truncated or damaged: its {kind.decode('latin-1')!r} box "
                                        f"at byte {pos} claims {n} bytes, the file has {size - pos} from there", path)
            if kind == b"jp2c":
                found = True
                f.seek(pos + start)
                soc = f.read(2)
                f.seek(pos + n - 2)
                if soc != _J2K_SOC or f.read(2) != _J2K_EOC:
                    raise OrbitmlInputError("JPEG 2000 codestream is truncated or damaged (no end-of-codestream "
                                            "marker where its box ends)", path)
            pos += n
        if not found:
            raise OrbitmlInputError("JPEG 2000 file holds no codestream box (jp2c)", path)


MEMORY_ENV = "ORBITML_MAX_MEMORY"
DEFAULT_MAX_MEMORY = 8 * 2**30


def parse_size(text: str) -> int:
    """``"8G"``, ``"512M"``, ``"2e9"`` -> bytes."""
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if mult > 1 else t) * mult)
    except ValueError:
        raise OrbitmlInputError(f"{MEMORY_ENV}={text!r} is not a size such as 8G or 512M") from None


def max_memory() -> int:
    env = os.environ.get(MEMORY_ENV)
    return parse_size(env) if env else DEFAULT_MAX_MEMORY


def _human(n: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def check_load(nbytes: int, what: str, path: Path | None = None, how: str = "") -> None:
    """Refuse to load ``nbytes`` into memory above the limit (``ORBITML_MAX_MEMORY``, default 8 GiB)."""
    limit = max_memory()
    if nbytes > limit:
        raise OrbitmlInputError(f"{what} needs {_human(nbytes)} in memory, more than the limit of "
                                f"{_human(limit)}; {how + '; ' if how else ''}or raise the limit with "
                                f"{MEMORY_ENV}=16G", path)


WINDOW_HOW = ("open it lazily by windows (open_scene(..., chunks=1024)), or cut a window or a band subset "
              "first (e.g. gdal_translate -srcwin)")


def check_raster_load(shape: tuple[int, ...], dtype: Any, path: Path | None, how: str = WINDOW_HOW) -> None:
    """Refuse to read a whole raster of ``shape`` and ``dtype`` into memory above the limit."""
    n = 1
    for v in shape:
        n *= int(v)
    dims = " x ".join(str(int(v)) for v in shape)
    check_load(n * np.dtype(dtype).itemsize, f"reading this {dims} {np.dtype(dtype)} raster whole", path, how)
