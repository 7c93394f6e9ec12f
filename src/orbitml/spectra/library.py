"""Spectral libraries: the :class:`SpectralLibrary` container and its readers and writers.

Formats (``read_library`` looks at the content, not only the suffix):

* ENVI Classic spectral library (``.sli`` + ``.hdr``), read through SPy (``spectral``).  Rows
  that are not spectra (USGS "Wavelengths ...", "Resolution ...", "Bandpass ...", "error bars to
  preceding") and rows that hold only ignore values are dropped; the ``data ignore value`` becomes
  NaN, and so does the USGS deleted-point value -1.23e34 even when the header declares none
  (splib06 headers do not); micrometre wavelengths are converted to nm.
* USGS splib07 ASCII records (a title line, then one value per line, ``-1.23e34`` = missing) with
  their wavelength record (passed as ``wavelengths=`` or found beside the record).
* CSV: first column wavelength (header says the unit, e.g. ``wavelength_nm``), optionally a
  ``fwhm`` column, then one column per spectrum named in the header row.

Wavelengths are always nanometres, ascending.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError, count
from orbitml.io.atomic import atomic_path

__all__ = ["SpectralLibrary", "LibraryKeyError", "read_library", "write_library", "USGS_IGNORE"]

USGS_IGNORE = -1.23e34  # USGS SPECPR "deleted point" value
_IGNORE_RTOL = 1e-3  # convolved USGS libraries hold slightly perturbed copies of the ignore value
PER_SPECTRUM_KEYS = ("params", "family", "label")
_NOT_SPECTRUM = re.compile(r"^\s*(wavelengths?\b|resolution\b|bandpass\b|error\s+bars\b)", re.IGNORECASE)


class LibraryKeyError(OrbitmlInputError, KeyError):
    """No spectrum of the library matches the requested name or pattern."""

    def __str__(self) -> str:  # KeyError would quote the message
        return OrbitmlInputError.__str__(self)


def _norm(name: str) -> str:
    return " ".join(str(name).split()).lower()


@dataclass(eq=False)
class SpectralLibrary:
    """A set of named spectra on one wavelength grid.

    ``spectra`` is ``(n, bands)`` float (float32 or float64, NaN = missing), ``wavelength`` the
    band centres in nm (ascending), ``names`` one name per spectrum, ``fwhm`` band widths in nm
    (or None), ``metadata`` free-form facts (source file, format, per-spectrum parameters ...).
    """

    spectra: np.ndarray
    wavelength: np.ndarray
    names: list[str] | None = None
    fwhm: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = np.asarray(self.spectra)
        if not np.issubdtype(s.dtype, np.floating):
            s = s.astype(np.float64)
        if s.ndim == 1:
            s = s[None, :]
        if s.ndim != 2:
            raise OrbitmlInputError(f"library spectra must be a (n, bands) array, got shape {s.shape}")
        wl = np.asarray(self.wavelength, dtype=np.float64).ravel()
        if wl.size != s.shape[1]:
            raise OrbitmlInputError(f"{count(wl.size, 'wavelength')} given for spectra with "
                                    f"{count(s.shape[1], 'band')}")
        if wl.size > 1 and not np.all(np.diff(wl) > 0):
            raise OrbitmlInputError("library wavelengths must be strictly ascending (nm)")
        names = [f"spectrum_{i + 1}" for i in range(s.shape[0])] if self.names is None else self.names
        names = [str(n) for n in names]
        if len(names) != s.shape[0]:
            raise OrbitmlInputError(f"{len(names)} names given for {s.shape[0]} spectra")
        fw = None
        if self.fwhm is not None:
            fw = np.asarray(self.fwhm, dtype=np.float64).ravel()
            if fw.size != wl.size:
                raise OrbitmlInputError(f"{count(fw.size, 'FWHM value')} given for {count(wl.size, 'band')}")
        self.spectra, self.wavelength, self.names, self.fwhm = s, wl, names, fw
        self.metadata = dict(self.metadata)

    # -- container protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return self.spectra.shape[0]

    @property
    def n_bands(self) -> int:
        return self.spectra.shape[1]

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """Iterate over ``(name, spectrum)`` pairs."""
        return iter(zip(self.names, self.spectra, strict=True))

    def __repr__(self) -> str:
        wl = f"{self.wavelength[0]:.1f}-{self.wavelength[-1]:.1f} nm" if self.n_bands else "no bands"
        return f"SpectralLibrary({len(self)} spectra x {self.n_bands} bands, {wl})"

    def _indices(self, key: Any) -> np.ndarray:
        n = len(self)
        if isinstance(key, str):
            return self.find(key)
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"spectrum index {i} out of range for {n} spectra")
            return np.array([i % n])
        if isinstance(key, slice):
            return np.arange(n)[key]
        arr = np.asarray(key)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise IndexError(f"boolean selection of length {arr.size} for {n} spectra")
            return np.flatnonzero(arr)
        if arr.dtype.kind in "iu":
            return np.arange(n)[arr.ravel()]
        if arr.dtype.kind in "UO":
            return np.concatenate([self.find(str(k)) for k in arr.ravel()]) if arr.size else arr.astype(int)
        raise TypeError(f"cannot select spectra with {type(key).__name__}")

    def __getitem__(self, key: Any) -> SpectralLibrary:
        """A sub-library: by index, slice, boolean mask, list, name or regular expression."""
        return self.take(self._indices(key))

    def take(self, indices: Sequence[int] | np.ndarray) -> SpectralLibrary:
        idx = np.asarray(indices, dtype=int).ravel()
        meta = dict(self.metadata)
        for key in PER_SPECTRUM_KEYS:  # metadata lists with one entry per spectrum follow the selection
            vals = meta.get(key)
            if isinstance(vals, list) and len(vals) == len(self):
                meta[key] = [vals[i] for i in idx]
        return SpectralLibrary(
            self.spectra[idx].copy(),
            self.wavelength.copy(),
            [self.names[i] for i in idx],
            None if self.fwhm is None else self.fwhm.copy(),
            meta,
        )

    def find(self, name_or_pattern: str) -> np.ndarray:
        """Indices of spectra named ``name_or_pattern`` (whitespace and case ignored), else of those
        whose name matches it as a regular expression (``re.search``, case-insensitive)."""
        target = _norm(name_or_pattern)
        exact = [i for i, n in enumerate(self.names) if _norm(n) == target]
        if exact:
            return np.array(exact)
        try:
            rx = re.compile(name_or_pattern, re.IGNORECASE)
        except re.error:
            rx = re.compile(re.escape(name_or_pattern), re.IGNORECASE)
        hits = [i for i, n in enumerate(self.names) if rx.search(n)]
        if not hits:
            raise LibraryKeyError(f"no spectrum named or matching {name_or_pattern!r} in {self!r}")
        return np.array(hits)

    def select(self, pattern: str | None = None, *, names: Sequence[str] | None = None) -> SpectralLibrary:
        """Sub-library of spectra matching a regex ``pattern`` and/or listed in ``names``."""
        keep = np.ones(len(self), dtype=bool)
        if pattern is not None:
            rx = re.compile(pattern, re.IGNORECASE)
            keep &= np.array([bool(rx.search(n)) for n in self.names], dtype=bool)
        if names is not None:
            wanted = {_norm(n) for n in names}
            keep &= np.array([_norm(n) in wanted for n in self.names], dtype=bool)
        return self.take(np.flatnonzero(keep))

    def group(self, classes: dict[str, str] | Sequence[tuple[str, str]]
              ) -> tuple[SpectralLibrary, np.ndarray, list[str]]:
        """Mineral classes from name patterns: ``{"Kaolinite": "kaolin", "Smectite": "nontron|montmor"}``.

        Each pattern selects spectra as :meth:`find` does (exact name, else case-insensitive regex).
        Returns ``(sub-library of the selected spectra, class index per spectrum, class names)``.
        A class that matches nothing, or a spectrum claimed by two classes, is an error.
        """
        items = list(classes.items()) if isinstance(classes, dict) else [tuple(c) for c in classes]
        if not items:
            raise OrbitmlInputError("no classes given")
        owner: dict[int, str] = {}
        rows: list[int] = []
        labels: list[int] = []
        names = [str(n) for n, _ in items]
        if len(set(names)) != len(names):
            raise OrbitmlInputError(f"class names repeat: {names}")
        for c, (cname, pattern) in enumerate(items):
            try:
                idx = self.find(pattern)
            except LibraryKeyError:
                raise OrbitmlInputError(f"class {cname!r}: no spectrum named or matching {pattern!r}") from None
            for i in idx.tolist():
                if i in owner:
                    raise OrbitmlInputError(f"spectrum {self.names[i]!r} matches both class {owner[i]!r} and "
                                            f"{cname!r}; make the patterns exclusive")
                owner[i] = cname
                rows.append(i)
                labels.append(c)
        order = np.argsort(rows, kind="stable")
        rows_a, labels_a = np.asarray(rows)[order], np.asarray(labels)[order]
        return self.take(rows_a), labels_a, names

    def spectrum(self, key: int | str) -> np.ndarray:
        """One spectrum as a 1-D array (a name must match exactly one spectrum)."""
        idx = self._indices(key)
        if idx.size != 1:
            raise LibraryKeyError(f"{key!r} matches {idx.size} spectra, not one")
        return self.spectra[idx[0]].copy()

    def to_numpy(self, dtype: Any = None) -> np.ndarray:
        """The ``(n, bands)`` spectra as a new numpy array."""
        return np.array(self.spectra, dtype=dtype, copy=True)

    def resample(self, dst_centres: Any, dst_fwhm: Any, *, min_support: float = 0.5) -> SpectralLibrary:
        """This library convolved to a sensor's bands (Gaussian response from centres and FWHM, nm)."""
        from orbitml.spectra.resample import resample_to_bands

        return resample_to_bands(self, None, dst_centres, dst_fwhm, min_support=min_support, _stacklevel=3)


# -- reading --------------------------------------------------------------------------------------
def read_library(
    path: str | os.PathLike,
    *,
    wavelengths: Any = None,
    fwhm: Any = None,
) -> SpectralLibrary:
    """Read an ENVI ``.sli``, a USGS splib07 ASCII record, or a CSV library (content decides).

    ``wavelengths`` overrides or supplies the band centres: an array in nm, or the path of a
    wavelength file (a splib07 wavelength record, or a one-column text/CSV file; micrometres are
    recognised from the title or from values below 100).  ``fwhm`` likewise, for band widths.
    """
    path = Path(path)
    if not path.exists():
        raise OrbitmlInputError("file not found", path)
    if path.is_dir():
        raise OrbitmlInputError("is a folder; pass one library file", path)
    kind = _detect(path)
    if kind == "envi":
        from orbitml.spectra._readers import read_envi_sli

        lib = read_envi_sli(path, have_wavelengths=wavelengths is not None)
    elif kind == "usgs":
        from orbitml.spectra._readers import read_usgs_record

        lib = read_usgs_record(path, wavelengths)
        wavelengths = None  # used already
    else:
        lib = _read_csv(path)
    if wavelengths is not None:
        wl = wavelength_values(wavelengths, lib.n_bands, path)
        lib = _with_axis(lib, wl, lib.fwhm)
    if fwhm is not None:
        fw = wavelength_values(fwhm, lib.n_bands, path, what="FWHM")
        lib = SpectralLibrary(lib.spectra, lib.wavelength, lib.names, fw, lib.metadata)
    return lib


def _with_axis(lib: SpectralLibrary, wl: np.ndarray, fw: np.ndarray | None) -> SpectralLibrary:
    """Rebuild with wavelengths ``wl`` (any order; sorted ascending here)."""
    order = np.argsort(wl, kind="stable")
    wl = wl[order]
    if wl.size > 1 and np.any(np.diff(wl) <= 0):
        raise OrbitmlInputError("wavelengths contain duplicates", lib.metadata.get("source"))
    return SpectralLibrary(lib.spectra[:, order], wl, lib.names, None if fw is None else fw[order], lib.metadata)


def wavelength_values(
    spec: Any, n: int, path: Any, what: str = "wavelength", allow_missing: bool = False
) -> np.ndarray:
    """Band centres (nm) from an array (nm) or from a wavelength file; length must be ``n``."""
    if isinstance(spec, (str, os.PathLike)):
        from orbitml.spectra._readers import read_axis_file

        values = read_axis_file(Path(spec))
        src = Path(spec)
    else:
        values = np.asarray(spec, dtype=np.float64).ravel()
        src = path
    if values.size != n:
        raise OrbitmlInputError(f"{values.size} {what} values given for a library with {count(n, 'band')}", src)
    if not allow_missing and not np.all(np.isfinite(values)):
        raise OrbitmlInputError(f"{what} values contain missing entries", src)
    return values


def _detect(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"ENVI"):
        return "envi"
    has_hdr = False
    for hdr in (path.with_suffix(".hdr"), Path(str(path) + ".hdr")):
        if hdr != path and hdr.is_file():
            with open(hdr, "rb") as f:
                has_hdr = has_hdr or f.read(4) == b"ENVI"
    binary = _looks_binary(head)
    # a text library (CSV, USGS record) may sit beside an unrelated ENVI header of the same stem
    if has_hdr and (binary or path.suffix.lower() in (".sli", ".lib", ".spl", "")):
        return "envi"
    if binary:
        raise OrbitmlInputError("binary file that is not an ENVI spectral library (no ENVI .hdr beside it)", path)
    text = head.decode("utf-8", errors="replace")  # Latin-1 names survive as U+FFFD
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise OrbitmlInputError("empty file; expected a spectral library", path)
    if "record=" in lines[0].lower().replace(" ", "") or (
        len(lines) > 1 and "," not in lines[0] and _is_number(lines[1].strip())
    ):
        return "usgs"
    if "," in lines[0] or "\t" in lines[0] or ";" in lines[0]:
        return "csv"
    raise OrbitmlInputError(
        "unknown spectral library format: expected an ENVI .sli with .hdr, a USGS splib07 ASCII "
        "record or a CSV with a header row",
        path,
    )


def _looks_binary(head: bytes) -> bool:
    """True for raw numbers (control bytes present), False for text in any 8-bit or UTF-8 encoding."""
    if not head:
        return False
    ctrl = sum(1 for c in head if (c < 32 and c not in (9, 10, 13)) or c == 127)
    return b"\0" in head or ctrl > 0.01 * len(head)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _label_scale(label: str) -> float | None:
    """Factor to nm that a unit label (header cell, title) states, or None when it names no unit."""
    tokens = set(re.split(r"[^a-z\u00b50-9]+", label.lower()))
    if tokens & {"wavenumber", "wavenumbers", "cm", "cm1"}:
        raise OrbitmlInputError(f"wavenumber axes are not supported ({label!r}); convert to wavelength")
    if tokens & {
        "um",
        "\u00b5m",
        "micron",
        "microns",
        "micrometer",
        "micrometers",
        "micrometre",
        "micrometres",
        "\u03bcm",
    }:
        return 1000.0
    if tokens & {"nm", "nanometer", "nanometers", "nanometre", "nanometres"}:
        return 1.0
    return None


def wavelength_scale(label: str, values: np.ndarray) -> float:
    """Factor to nm from a unit label, or from the values (all below 100: micrometres) if it names none."""
    scale = _label_scale(label)
    if scale is not None:
        return scale
    finite = values[np.isfinite(values)]
    return 1000.0 if finite.size and np.nanmax(finite) < 100 else 1.0


def _read_csv(path: Path) -> SpectralLibrary:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
    if len(rows) < 2 and not (rows and _is_number(rows[0][0])):
        raise OrbitmlInputError("CSV library needs a header row and at least one row of values", path)
    has_header = not _is_number(rows[0][0].strip())
    header = [c.strip() for c in rows[0]] if has_header else []
    body = rows[1:] if has_header else rows
    ncol = max(len(r) for r in body)
    if ncol < 2:
        raise OrbitmlInputError("CSV library needs a wavelength column and at least one spectrum column", path)
    values = np.full((len(body), ncol), np.nan)
    for i, r in enumerate(body):
        for j, c in enumerate(r):
            c = c.strip()
            if c and c.lower() not in ("nan", "na", "null"):
                try:
                    values[i, j] = float(c)
                except ValueError:
                    raise OrbitmlInputError(
                        f"row {i + 2 if has_header else i + 1}, column {j + 1}: {c!r} is not a number", path
                    ) from None
    if not header:
        header = ["wavelength"] + [f"spectrum_{j}" for j in range(1, ncol)]
    header += [f"spectrum_{j}" for j in range(len(header), ncol)]
    wl_raw = values[:, 0]
    if not np.all(np.isfinite(wl_raw)):
        raise OrbitmlInputError("the wavelength column (first) has empty or non-numeric cells", path)
    scale = wavelength_scale(header[0], wl_raw)
    first, fw = 1, None
    if ncol > 2 and re.match(r"^\s*(fwhm|bandwidth|bandpass|resolution)", header[1], re.IGNORECASE):
        fw_scale = _label_scale(header[1])
        fw = values[:, 1] * (scale if fw_scale is None else fw_scale)
        first = 2
    meta = {"source": str(path), "format": "csv"}
    lib = SpectralLibrary(values[:, first:].T.copy(), np.arange(len(wl_raw), dtype=float), header[first:], None, meta)
    return _with_axis(lib, wl_raw * scale, fw)


# -- writing --------------------------------------------------------------------------------------
def write_library(
    lib: SpectralLibrary,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    overwrite: bool = False,
    ignore_value: float = USGS_IGNORE,
) -> Path:
    """Write ``lib`` as an ENVI spectral library (``.sli`` + ``.hdr``) or a CSV, atomically.

    ``format`` is ``"sli"`` or ``"csv"`` (default: from the suffix).  NaN is written as
    ``ignore_value`` in ENVI files (declared as ``data ignore value``) and as an empty cell in CSV.
    Both round-trip exactly through :func:`read_library`.
    """
    if not isinstance(lib, SpectralLibrary):
        raise OrbitmlInputError(f"write_library needs a SpectralLibrary, got {type(lib).__name__}")
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".") or "sli").lower()
    if fmt in ("sli", "envi", "lib"):
        from orbitml.spectra._readers import write_envi_sli

        hdr = path.with_suffix(".hdr")
        if hdr.exists() and not overwrite:
            raise OrbitmlInputError("output header exists; pass overwrite=True to replace it", hdr)
        with atomic_path(path, overwrite=overwrite, siblings=(".hdr",)) as tmp:
            write_envi_sli(lib, tmp, ignore_value)
        return path
    if fmt in ("csv", "txt"):
        with atomic_path(path, overwrite=overwrite) as tmp:
            _write_csv(lib, tmp)
        return path
    raise OrbitmlInputError(f"unknown library format {fmt!r}; use 'sli' or 'csv'", path)


def _cell(v: float) -> str:
    return "" if not np.isfinite(v) else repr(float(v))


def _write_csv(lib: SpectralLibrary, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        head = ["wavelength_nm"] + (["fwhm_nm"] if lib.fwhm is not None else []) + list(lib.names)
        w.writerow(head)
        for b in range(lib.n_bands):
            row = [repr(float(lib.wavelength[b]))]
            if lib.fwhm is not None:
                row.append(_cell(lib.fwhm[b]))
            row.extend(_cell(v) for v in lib.spectra[:, b])
            w.writerow(row)
