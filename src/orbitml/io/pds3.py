"""PDS3 images: label facts through pdr, pixels through a lazy memory map that honours the label.

GDAL's PDS driver ignores line prefix/suffix bytes (HiRISE EDRs come out scrambled), so pixels are read
here from the label's own description: pointer, record size, sample type and bits, line prefix/suffix bytes,
band storage (BSQ/BIL/BIP), scaling.  Georeferencing comes from GDAL when it reads the same label.  Before
any pixel is read the label is checked against the file size, so an inconsistent label fails clearly.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError

_SAMPLE_TYPES = {
    "MSB_INTEGER": ">i", "SUN_INTEGER": ">i", "MAC_INTEGER": ">i", "INTEGER": ">i",
    "MSB_UNSIGNED_INTEGER": ">u", "SUN_UNSIGNED_INTEGER": ">u", "MAC_UNSIGNED_INTEGER": ">u",
    "UNSIGNED_INTEGER": ">u", "LSB_INTEGER": "<i", "PC_INTEGER": "<i", "VAX_INTEGER": "<i",
    "LSB_UNSIGNED_INTEGER": "<u", "PC_UNSIGNED_INTEGER": "<u", "VAX_UNSIGNED_INTEGER": "<u",
    "IEEE_REAL": ">f", "FLOAT": ">f", "REAL": ">f", "SUN_REAL": ">f", "MAC_REAL": ">f", "PC_REAL": "<f",
}


def _value(v: Any) -> Any:
    if isinstance(v, Mapping) and "value" in v:
        return v["value"]
    return v


def _find_block(meta: Mapping, key: str) -> Mapping | None:
    """The first nested block called ``key`` that describes an image (has LINES)."""
    for k, v in meta.items():
        if isinstance(v, Mapping) and "value" not in v:
            if k.upper() == key and "LINES" in v:
                return v
            found = _find_block(v, key)
            if found is not None:
                return found
    return None


def _find_pointer(meta: Mapping, key: str, parent: Mapping | None = None) -> tuple[Any, Mapping] | None:
    """(pointer value, the block that holds it) for ``^key`` anywhere in the label."""
    for k, v in meta.items():
        if k.upper() == f"^{key}":
            return v, meta
    for _k, v in meta.items():
        if isinstance(v, Mapping) and "value" not in v:
            found = _find_pointer(v, key, meta)
            if found is not None:
                return found
    return None


def _resolve(label_path: Path, name: str) -> Path:
    from orbitml.io.integrity import check_pointer_name

    check_pointer_name(label_path, name)
    cand = label_path.parent / name
    if cand.exists():
        return cand
    low = name.lower()
    for p in label_path.parent.iterdir():
        if p.name.lower() == low:
            return p
    raise OrbitmlInputError(f"the label points at data file {name!r}, which is not beside it", label_path)


def read_label(path: Path):
    import pdr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            data = pdr.read(str(path))
        except Exception as exc:  # pdr raises many types for unreadable labels
            raise OrbitmlInputError(f"not a readable PDS3 label ({exc})", path) from exc
    return data.metadata


def find_label(path: Path) -> Path:
    """The label for ``path``: itself when it starts with a PDS3 label, else a detached .lbl beside it."""
    with open(path, "rb") as f:
        head = f.read(200).lstrip()
    if head.startswith((b"PDS_VERSION_ID", b"ODL_VERSION_ID")):
        return path
    for suf in (".lbl", ".LBL"):
        lbl = path.with_suffix(suf)
        if lbl.exists():
            return lbl
    raise OrbitmlInputError("no PDS3 label found (neither attached nor a .lbl beside it)", path)


def image_layout(label_path: Path, meta: Mapping) -> dict[str, Any]:
    """Where and how the IMAGE object's pixels lie, checked against the data file's size."""
    img = _find_block(meta, "IMAGE")
    if img is None and "LINES" in meta and "LINE_SAMPLES" in meta:
        img = meta  # pdr flattens blocks opened with a mixed-case `Object = IMAGE`
    if img is None:
        raise OrbitmlInputError("the PDS3 label describes no IMAGE object", label_path)
    ptr = _find_pointer(meta, "IMAGE")
    if ptr is None:
        raise OrbitmlInputError("the PDS3 label has no ^IMAGE pointer", label_path)
    pval, holder = ptr
    record_bytes = _value(holder.get("RECORD_BYTES", meta.get("RECORD_BYTES")))
    file_records = _value(holder.get("FILE_RECORDS", meta.get("FILE_RECORDS")))
    pval = _value(pval)
    data_file, offset = label_path, 0
    if isinstance(pval, str) and not pval.strip().isdigit():
        if pval.lower().endswith((".jp2", ".j2k")):
            return {"jp2": _resolve(label_path, pval)}
        data_file = _resolve(label_path, pval)
    elif isinstance(pval, list | tuple):
        data_file = _resolve(label_path, str(pval[0]))
        offset = (int(_value(pval[1])) - 1) * int(record_bytes or 1)
    else:
        units = str(ptr[0].get("units", "")).upper() if isinstance(ptr[0], Mapping) else ""
        n = int(pval)
        offset = n - 1 if units == "BYTES" else (n - 1) * int(record_bytes or 0)
    from orbitml.io.integrity import check_dims

    lines, samples, bands = check_dims(_value(img["LINES"]), _value(img["LINE_SAMPLES"]),
                                       _value(img.get("BANDS", 1)), label_path)
    try:
        bits = int(_value(img.get("SAMPLE_BITS", 8)))
    except (TypeError, ValueError):
        raise OrbitmlInputError(f"SAMPLE_BITS {_value(img.get('SAMPLE_BITS'))!r} is not a number", label_path) from None
    stype = str(_value(img.get("SAMPLE_TYPE", "MSB_UNSIGNED_INTEGER"))).upper().replace(" ", "_")
    if stype not in _SAMPLE_TYPES:
        raise OrbitmlInputError(f"unsupported SAMPLE_TYPE {stype}", label_path)
    if bits not in (8, 16, 32, 64):
        raise OrbitmlInputError(f"unsupported SAMPLE_BITS {bits}", label_path)
    kind = _SAMPLE_TYPES[stype]
    dtype = np.dtype("u1" if bits == 8 and kind[1] == "u" else "i1" if bits == 8 else f"{kind}{bits // 8}")
    prefix = int(_value(img.get("LINE_PREFIX_BYTES", 0)))
    suffix = int(_value(img.get("LINE_SUFFIX_BYTES", 0)))
    storage = str(_value(img.get("BAND_STORAGE_TYPE", "BAND_SEQUENTIAL"))).upper()
    nbytes = dtype.itemsize
    if storage.startswith("LINE"):
        line_bytes = prefix + samples * bands * nbytes + suffix
        total = lines * line_bytes
    elif storage.startswith("SAMPLE"):
        line_bytes = prefix + samples * bands * nbytes + suffix
        total = lines * line_bytes
    else:
        line_bytes = prefix + samples * nbytes + suffix
        total = bands * lines * line_bytes
    size = data_file.stat().st_size
    if record_bytes and file_records:
        expected_file = int(record_bytes) * int(file_records)
        if data_file == label_path:
            pass  # attached label: FILE_RECORDS covers the whole file
        if expected_file != size and data_file != label_path:
            raise OrbitmlInputError(
                f"label is inconsistent with its data: FILE_RECORDS={file_records} x RECORD_BYTES={record_bytes}"
                f" = {expected_file} bytes, but {data_file.name} has {size} bytes", label_path)
        if offset + total > expected_file:
            raise OrbitmlInputError(
                f"label is inconsistent with its data: the IMAGE ({lines} lines x {samples} samples x {bands} bands"
                f" of {bits}-bit) needs {offset + total} bytes but the label declares {file_records} records of"
                f" {record_bytes} bytes", label_path)
    if offset + total > size:
        raise OrbitmlInputError(
            f"data file is truncated: the IMAGE needs {offset + total} bytes from offset {offset}, the file has {size}",
            data_file)
    scale = _value(img.get("SCALING_FACTOR", 1.0))
    off = _value(img.get("OFFSET", 0.0))
    nodata = None
    for key in ("MISSING_CONSTANT", "NULL", "CORE_NULL", "INVALID_CONSTANT"):
        if key in img:
            try:
                nodata = float(_value(img[key]))
                break
            except (TypeError, ValueError):
                continue
    band_names = img.get("BAND_NAME")
    return {
        "file": data_file, "offset": offset, "lines": lines, "samples": samples, "bands": bands,
        "dtype": dtype, "prefix": prefix, "suffix": suffix, "storage": storage,
        "scale": float(scale) if scale not in (None, "N/A") else 1.0,
        "add": float(off) if off not in (None, "N/A") else 0.0,
        "nodata": nodata, "unit": _value(img.get("UNIT")),
        "band_names": list(band_names) if isinstance(band_names, list | tuple) else None,
    }


def memmap_image(layout: dict[str, Any]) -> np.ndarray:
    """A (band, line, sample) view of the pixels, memory-mapped (nothing is read until used)."""
    dt, L, S, B = layout["dtype"], layout["lines"], layout["samples"], layout["bands"]
    pre, suf, n = layout["prefix"], layout["suffix"], layout["dtype"].itemsize
    mm = np.memmap(layout["file"], dtype=np.uint8, mode="r")
    base = layout["offset"] + pre
    st = layout["storage"]
    if st.startswith("LINE"):  # BIL: line -> band -> sample
        lb = pre + B * S * n + suf
        return np.ndarray((L, B, S), dtype=dt, buffer=mm, offset=base, strides=(lb, S * n, n)).transpose(1, 0, 2)
    if st.startswith("SAMPLE"):  # BIP: line -> sample -> band
        lb = pre + B * S * n + suf
        return np.ndarray((L, S, B), dtype=dt, buffer=mm, offset=base, strides=(lb, B * n, n)).transpose(2, 0, 1)
    lb = pre + S * n + suf
    return np.ndarray((B, L, S), dtype=dt, buffer=mm, offset=base, strides=(L * lb, lb, n))


def label_facts(meta: Mapping) -> dict[str, Any]:
    facts = {}
    for attr, keys in {
        "instrument": ("INSTRUMENT_ID", "INSTRUMENT_NAME"),
        "product_id": ("PRODUCT_ID",),
        "product_type": ("PRODUCT_TYPE",),
        "mission": ("INSTRUMENT_HOST_NAME", "SPACECRAFT_NAME", "MISSION_NAME"),
        "target": ("TARGET_NAME",),
        "start_time": ("START_TIME",),
        "data_set_id": ("DATA_SET_ID",),
        "wavelength_file": ("MRO:WAVELENGTH_FILE_NAME",),
    }.items():
        for k in keys:
            v = _value(meta.get(k))
            if v not in (None, "N/A", "NULL", "UNK", ""):
                facts[attr] = str(v)
                break
    return facts
