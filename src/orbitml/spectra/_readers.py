"""ENVI ``.sli`` and USGS splib07 ASCII readers (and the ENVI writer) behind ``read_library``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.spectra.library import (
    _IGNORE_RTOL,
    _NOT_SPECTRUM,
    USGS_IGNORE,
    SpectralLibrary,
    _with_axis,
    wavelength_scale,
)

_ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}


def _missing(values: np.ndarray, ignore: float | None) -> np.ndarray:
    bad = ~np.isfinite(values)
    if ignore is not None and np.isfinite(ignore):
        if ignore == 0:
            bad |= values == 0
        else:
            bad |= np.abs(values - ignore) <= _IGNORE_RTOL * abs(ignore)
    return bad


def _envi_pair(path: Path) -> tuple[Path, Path]:
    """(header, data) for a path naming either of them."""
    if path.read_bytes()[:4] == b"ENVI":
        for suf in (".sli", ".lib", ".spl", ""):
            data = path.with_suffix(suf)
            if data != path and data.is_file():
                return path, data
        raise OrbitmlInputError("ENVI header without its library data file (.sli) beside it", path)
    for hdr in (path.with_suffix(".hdr"), Path(str(path) + ".hdr")):
        if hdr.is_file():
            return hdr, path
    raise OrbitmlInputError("no ENVI header (.hdr) beside the library", path)


def read_envi_sli(path: Path, have_wavelengths: bool = False) -> SpectralLibrary:
    from spectral.io import envi

    hdr, data = _envi_pair(path)
    try:
        h = envi.read_envi_header(str(hdr))
    except Exception as exc:  # SPy raises its own types for malformed headers
        raise OrbitmlInputError(f"unreadable ENVI header: {exc}", hdr) from None
    ftype = str(h.get("file type", "")).strip().lower()
    if "spectral library" not in ftype:
        raise OrbitmlInputError(
            f"ENVI file type is {h.get('file type')!r}, not 'ENVI Spectral Library' "
            "(an image cube? open it with orbitml.io.open_scene)",
            hdr,
        )
    try:
        samples, lines = int(h["samples"]), int(h["lines"])
        dtype = np.dtype(_ENVI_DTYPES[int(h.get("data type", 4))])
        offset = int(h.get("header offset", 0))
    except (KeyError, ValueError) as exc:
        raise OrbitmlInputError(f"ENVI header lacks or garbles a required field ({exc})", hdr) from None
    need = offset + samples * lines * dtype.itemsize
    have = data.stat().st_size
    if have < need:
        raise OrbitmlInputError(
            f"truncated library: header needs {need} bytes ({lines} spectra x {samples} bands, "
            f"{dtype.name}), the file has {have}",
            data,
        )
    try:
        lib = envi.open(str(hdr), str(data))
        spectra = np.asarray(lib.spectra)
    except Exception as exc:
        raise OrbitmlInputError(f"SPy could not read the library: {exc}", data) from None
    if spectra.shape != (lines, samples):
        spectra = spectra.reshape(lines, samples)
    if not np.issubdtype(spectra.dtype, np.floating):
        spectra = spectra.astype(np.float64)
    raw_names = h.get("spectra names")
    names = [str(n).strip() for n in raw_names] if raw_names else [f"spectrum_{i + 1}" for i in range(lines)]
    if len(names) != lines:
        raise OrbitmlInputError(f"header lists {len(names)} spectra names for {lines} spectra", hdr)
    ignore = None
    if "data ignore value" in h:
        try:
            ignore = float(h["data ignore value"])
        except ValueError:
            raise OrbitmlInputError(f"bad data ignore value {h['data ignore value']!r}", hdr) from None
    spectra = spectra.copy()
    # USGS libraries mark deleted points with -1.23e34 even when the header declares no ignore value
    bad = _missing(spectra, ignore) | _missing(spectra, USGS_IGNORE)
    spectra[bad] = np.nan
    keep = np.array([not _NOT_SPECTRUM.match(n) for n in names]) & ~bad.all(axis=1)
    if not keep.any():
        raise OrbitmlInputError("the library holds no spectra (all rows are axes, error bars or empty)", data)
    units = str(h.get("wavelength units", ""))
    meta = {
        "source": str(data),
        "header": str(hdr),
        "format": "envi-sli",
        "description": str(h.get("description", "")).strip(),
        "wavelength_units_in_file": units,
        "dropped_rows": int((~keep).sum()),
    }
    lib_out = SpectralLibrary(
        spectra[keep],
        np.arange(samples, dtype=float),
        [n for n, k in zip(names, keep, strict=True) if k],
        None,
        meta,
    )
    if "wavelength" not in h:
        if not have_wavelengths:
            raise OrbitmlInputError("the header lists no wavelengths; pass wavelengths= (nm or a file)", hdr)
        return lib_out
    wl = np.asarray([float(v) for v in h["wavelength"]], dtype=np.float64)
    if wl.size != samples:
        raise OrbitmlInputError(f"header has {wl.size} wavelengths for {samples} bands", hdr)
    scale = wavelength_scale(units, wl)
    fw = None
    if "fwhm" in h:
        fw = np.asarray([float(v) for v in h["fwhm"]], dtype=np.float64)
        if fw.size != samples:
            raise OrbitmlInputError(f"header has {fw.size} fwhm values for {samples} bands", hdr)
        fw = fw * scale
    return _with_axis(lib_out, wl * scale, fw)


def write_envi_sli(lib: SpectralLibrary, path: Path, ignore_value: float) -> None:
    from spectral.io import envi

    data = np.ascontiguousarray(lib.spectra)
    if data.dtype not in (np.float32, np.float64):
        data = data.astype(np.float64)
    if np.isnan(data).any():
        data = np.where(np.isnan(data), data.dtype.type(ignore_value), data)
    data.astype(data.dtype.newbyteorder("<"), copy=False).tofile(path)
    names = [re.sub(r"[{},]", ";", " ".join(n.split())) for n in lib.names]
    header = {
        "description": f"orbitml spectral library ({len(lib)} spectra)",
        "samples": lib.n_bands,
        "lines": len(lib),
        "bands": 1,
        "header offset": 0,
        "data type": 4 if data.dtype == np.float32 else 5,
        "interleave": "bsq",
        "byte order": 0,
        "wavelength units": "Nanometers",
        "data ignore value": repr(float(ignore_value)),
        "spectra names": names,
        "wavelength": [repr(float(v)) for v in lib.wavelength],
    }
    if lib.fwhm is not None:
        header["fwhm"] = [repr(float(v)) for v in lib.fwhm]
    envi.write_envi_header(str(path.with_suffix(".hdr")), header, is_library=True)


# -- USGS splib07 ASCII -------------------------------------------------------------------------------
def _read_record(path: Path) -> tuple[str, np.ndarray]:
    """(title, values with NaN for missing) of one splib07 ASCII record."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise OrbitmlInputError(f"cannot read: {exc}", path) from None
    if not lines:
        raise OrbitmlInputError("empty file; expected a USGS ASCII record", path)
    title = lines[0].strip()
    vals = []
    for i, ln in enumerate(lines[1:], start=2):
        ln = ln.strip()
        if not ln:
            continue
        try:
            vals.append(float(ln.split()[0]))
        except ValueError:
            raise OrbitmlInputError(
                f"line {i}: {ln[:40]!r} is not a number (USGS ASCII record expected)", path
            ) from None
    v = np.asarray(vals, dtype=np.float64)
    v[_missing(v, USGS_IGNORE)] = np.nan
    return title, v


def _record_name(title: str) -> str:
    m = re.search(r"record\s*=\s*\d+\s*:?\s*(.*)$", title, re.IGNORECASE)
    return (m.group(1) if m else title).strip()


def read_axis_file(path: Path) -> np.ndarray:
    """Wavelengths or widths (nm) from a splib07 wavelength/bandpass record or a one-column file."""
    if not path.is_file():
        raise OrbitmlInputError("wavelength file not found", path)
    title, v = _read_record(path) if not _is_numeric_line(path) else ("", _plain_column(path))
    return v * wavelength_scale(title, v)


def _is_numeric_line(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip().split(",")[0]
    try:
        float(first)
    except ValueError:
        return False
    return True


def _plain_column(path: Path) -> np.ndarray:
    vals = []
    for ln in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if ln.strip():
            try:
                vals.append(float(ln.replace(",", " ").split()[0]))
            except ValueError:
                raise OrbitmlInputError(f"{ln[:40]!r} is not a number", path) from None
    return np.asarray(vals)


def _code(name: str) -> str:
    """Spectrometer code of a splib07 record name: 'Brick ... ASDFRa AREF' -> 'ASDFR'."""
    toks = name.split()
    tok = toks[-2] if len(toks) >= 2 and toks[-1].isupper() and len(toks[-1]) <= 5 else (toks[-1] if toks else "")
    return re.sub(r"[a-z]+$", "", tok)


def _count_values(path: Path) -> int:
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(1 for ln in f if ln.strip()) - 1


def _find_axis(path: Path, n: int, code: str, kind: str) -> Path | None:
    """A '<kind>' record (Wavelengths / Bandpass) beside ``path`` with ``n`` values for ``code``."""
    cands = []
    for folder in dict.fromkeys([path.parent, path.parent.parent]):
        for p in sorted(folder.glob("*.txt")):
            if p != path and kind.lower() in p.name.lower() and _count_values(p) == n:
                cands.append(p)
    if kind == "Bandpass":  # only a bandpass for exactly this spectrometer
        cands = [p for p in cands if code and code in re.split(r"[_\-\s.()]+", p.name)]
        return cands[0] if len(cands) == 1 else None
    if len(cands) > 1 and code:
        toks = [set(re.split(r"[_\-\s.()]+", p.name)) for p in cands]
        match = [p for p, t in zip(cands, toks, strict=True) if any(code.startswith(x) for x in t if len(x) >= 3)]
        cands = match or cands
    if len(cands) > 1:
        raise OrbitmlInputError(
            f"several wavelength files beside the record fit its {n} channels "
            f"({', '.join(p.name for p in cands)}); pass wavelengths=",
            path,
        )
    return cands[0] if cands else None


def read_usgs_record(path: Path, wavelengths=None) -> SpectralLibrary:
    from orbitml.spectra.library import wavelength_values

    title, v = _read_record(path)
    name = _record_name(title)
    if re.match(r"^(wavelengths?|bandpass|resolution)\b", name, re.IGNORECASE):
        raise OrbitmlInputError(f"this is an axis record ({name!r}), not a spectrum; pass it as wavelengths=", path)
    if not np.isfinite(v).any():
        raise OrbitmlInputError("the record holds no valid values", path)
    code = _code(name)
    meta = {"source": str(path), "format": "usgs-ascii", "title": title}
    if wavelengths is None:
        wfile = _find_axis(path, v.size, code, "Wavelengths")
        if wfile is None:
            raise OrbitmlInputError(
                f"no wavelength file with {v.size} channels found beside the record; pass wavelengths=", path
            )
        wavelengths = wfile
    wl = wavelength_values(wavelengths, v.size, path, allow_missing=True)
    if isinstance(wavelengths, (str, Path)):
        meta["wavelength_file"] = str(wavelengths)
    fw = None
    bfile = _find_axis(path, v.size, code, "Bandpass")
    if bfile is not None:
        fw = read_axis_file(bfile)
        meta["fwhm_file"] = str(bfile)
    ok = np.isfinite(wl)
    lib = SpectralLibrary(v[None, ok], np.arange(int(ok.sum()), dtype=float), [name], None, meta)
    return _with_axis(lib, wl[ok], None if fw is None else fw[ok])


__all__ = ["read_envi_sli", "write_envi_sli", "read_usgs_record", "read_axis_file"]
