"""Decide what a file is from its content first, its name second."""

from __future__ import annotations

from pathlib import Path

from orbitml.errors import OrbitmlInputError

FORMATS = ("fits", "pds3", "isis3", "envi", "pds4", "gtiff", "jp2", "gdal")


def _head(path: Path, n: int = 2048) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def envi_header_for(path: Path) -> Path | None:
    """The ENVI header of a data file (``x.img`` -> ``x.hdr`` or ``x.img.hdr``), if there is one."""
    if path.suffix.lower() == ".hdr":
        return path
    for cand in (path.with_suffix(".hdr"), path.with_suffix(".HDR"), Path(str(path) + ".hdr")):
        if cand.exists():
            return cand
    return None


def detect_format(path: str | Path) -> str:
    """One of :data:`FORMATS`, from magic bytes and label text; raises for a missing or empty file."""
    path = Path(path)
    if not path.exists():
        raise OrbitmlInputError("no such file", path)
    if path.is_dir():
        raise OrbitmlInputError("is a folder, expected an image file", path)
    if path.stat().st_size == 0:
        raise OrbitmlInputError("file is empty", path)
    head = _head(path)
    text = head.lstrip()
    if head.startswith(b"SIMPLE  ="):
        return "fits"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "gtiff"
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
        return "jp2"
    if text.startswith(b"ENVI") and path.suffix.lower() == ".hdr":
        return "envi"
    up = text[:400].upper()
    if b"ISISCUBE" in up.replace(b" ", b"") or text.startswith(b"Object = IsisCube"):
        return "isis3"
    if text.startswith((b"PDS_VERSION_ID", b"ODL_VERSION_ID")) or b"PDS_VERSION_ID" in head[:200]:
        return "pds3"
    if text.startswith(b"<?xml") and (b"Product_Observational" in head or b"pds.nasa.gov/pds4" in head):
        return "pds4"
    hdr = envi_header_for(path)
    if hdr is not None and _head(hdr, 4) == b"ENVI":
        return "envi"
    # a detached PDS3 label next to this data file?
    for suf in (".lbl", ".LBL"):
        lbl = path.with_suffix(suf)
        if lbl.exists() and lbl != path:
            return "pds3-data"
    return "gdal"
