"""ENVI header facts (wavelength, fwhm, band names, ignore value) and header editing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError


def read_header(path: Path) -> dict[str, Any]:
    """Parse an ENVI header with SPy; keys are lower-case."""
    from spectral.io import envi

    try:
        return {k.lower(): v for k, v in envi.read_envi_header(str(path)).items()}
    except Exception as exc:  # SPy raises its own error types
        raise OrbitmlInputError(f"not a readable ENVI header ({exc})", path) from exc


def to_nm(values: Any, units: str | None) -> np.ndarray | None:
    """Wavelengths as nm from an ENVI/label list and its units (guessing micrometres below 100)."""
    if values is None:
        return None
    arr = np.asarray([float(v) for v in (values if isinstance(values, list | tuple | np.ndarray) else [values])])
    u = (units or "").strip().lower()
    if u.startswith(("micro", "um", "µm")) or (not u.startswith("nano") and u not in ("nm",) and arr.size and
                                                  np.nanmax(arr) < 100):
        arr = arr * 1000.0
    elif u.startswith(("milli", "mm")):
        arr = arr * 1e6
    return arr


def header_facts(path: Path) -> dict[str, Any]:
    """wavelength (nm), fwhm (nm), band names, ignore value and description from an ENVI header."""
    h = read_header(path)
    units = h.get("wavelength units")
    facts: dict[str, Any] = {
        "wavelength": to_nm(h.get("wavelength"), units),
        "fwhm": None,
        "band_names": h.get("band names"),
        "ignore": None,
        "description": h.get("description"),
        "header": h,
    }
    if facts["wavelength"] is not None and h.get("fwhm") is not None:
        wl_raw = np.asarray([float(v) for v in h["wavelength"]])
        scale = facts["wavelength"][0] / wl_raw[0] if wl_raw[0] else 1.0
        facts["fwhm"] = np.asarray([float(v) for v in h["fwhm"]]) * scale
    if h.get("data ignore value") is not None:
        try:
            facts["ignore"] = float(h["data ignore value"])
        except ValueError:
            pass
    return facts


def _fmt_list(values) -> str:
    return "{ " + " , ".join(str(v) for v in values) + " }"


def update_header(hdr: Path, fields: dict[str, Any]) -> None:
    """Replace or append fields of an ENVI header written by GDAL (lists written in braces)."""
    text = hdr.read_text()
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | np.ndarray):
            val = _fmt_list(value)
        else:
            val = str(value)
        pat = re.compile(rf"^{re.escape(key)}\s*=\s*(\{{[^}}]*\}}|[^\n]*)\n", re.IGNORECASE | re.MULTILINE)
        line = f"{key} = {val}\n"
        if pat.search(text):
            text = pat.sub(lambda m, line=line: line, text, count=1)
        else:
            text = text.rstrip("\n") + "\n" + line
    hdr.write_text(text)
