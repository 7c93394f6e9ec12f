"""Band-centre tables: CSV files given by the user and the products' own wavelength tables."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from orbitml.errors import OrbitmlInputError, count


def read_wavelength_table(path: str | os.PathLike) -> np.ndarray:
    """Band centres (nm) from a CSV/TAB table.

    Accepts a header row or none; uses a column named like ``wavelength`` (``_nm`` or ``_um``) when
    there is one, else the only column, else the first column whose values look like band centres
    (numeric, between 0.3 and 6 um or 300 and 6000 nm).  Micrometres are converted to nm.
    """
    path = Path(path)
    if not path.exists():
        raise OrbitmlInputError("wavelength table not found", path)
    from orbitml.io.text import read_text

    text = read_text(path, "wavelength table")
    delim = "," if text.count(",") else None
    rows = [r for r in (csv.reader(text.splitlines(), delimiter=delim) if delim else
                        (line.split() for line in text.splitlines())) if any(c.strip() for c in r)]
    if not rows:
        raise OrbitmlInputError("wavelength table is empty", path)

    def isnum(s: str) -> bool:
        try:
            float(s)
            return True
        except ValueError:
            return False

    header = None if all(isnum(c) for c in rows[0]) else [c.strip().lower() for c in rows[0]]
    body = rows[1:] if header else rows
    try:
        cols = np.array([[float(c) for c in r] for r in body], dtype=float)
    except ValueError as exc:
        raise OrbitmlInputError(f"wavelength table has a non-numeric value ({exc})", path) from exc
    if cols.ndim != 2 or cols.shape[0] == 0:
        raise OrbitmlInputError("wavelength table has no rows", path)
    col = None
    if header:
        for i, name in enumerate(header):
            if "wavelength" in name or name in ("wl", "lambda", "center", "centre"):
                col = i
                break
    if col is None:
        for i in range(cols.shape[1]):
            v = cols[:, i]
            if (np.all((v > 0.3) & (v < 6)) or np.all((v > 300) & (v < 6000))) and (cols.shape[1] == 1 or
                                                                                   len(np.unique(v)) == v.size):
                col = i
                break
    if col is None:
        raise OrbitmlInputError("no column of band centres found in the wavelength table", path)
    wl = cols[:, col]
    name = header[col] if header else ""
    if name.endswith(("_um", "(um)", "micron", "microns")) or (not name.endswith("nm") and np.nanmax(wl) < 10):
        wl = wl * 1000.0
    return wl


def as_wavelengths(value: str | os.PathLike | Sequence[float] | np.ndarray, nbands: int,
                   source: str | os.PathLike | None = None) -> np.ndarray:
    """Wavelengths from a table path or numbers, checked against the band count."""
    if isinstance(value, str | os.PathLike):
        wl = read_wavelength_table(value)
        where = Path(value)
    else:
        wl = np.asarray(value, dtype=float).ravel()
        where = source
    if wl.size != nbands:
        raise OrbitmlInputError(
            f"wavelength table has {count(wl.size, 'value')} but the image has {count(nbands, 'band')}", where)
    return wl
