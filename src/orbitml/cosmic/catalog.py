"""A per-hit catalogue from detection products (``<frame>.cosmic.fits``).

Each product (written by ``orbitml cosmic detect``) holds SCI and CLEAN in ADU, the MASK (1 = cosmic
ray) and header keys EXPTIME, DATE-OBS, GAIN, PIXSIZE, ...  The energy of a hit is the sum over its
pixels of ``(SCI - CLEAN) * GAIN`` electrons.  Every 8-connected component of the mask becomes one row
with its features (:func:`orbitml.cosmic.features.hit_table`), its class and class probabilities.

A frame table goes with the hit table (``<name>.frames.<ext>`` beside it): one row per frame, with the
exposure, the observation time and the area of valid pixels, so that frames without hits still count
in the rates.  A damaged product is reported and skipped; it never stops the batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from orbitml.cosmic.categorise import CLASSES, COSMIC_CLASSES, HitClassifier
from orbitml.cosmic.features import hit_table
from orbitml.cosmic.products import SUFFIX, Product, read_product
from orbitml.errors import OrbitmlInputError
from orbitml.io.atomic import atomic_path

HIT_COLUMNS = ["frame", "time", "hit", "x", "y", "class", "is_cosmic", *[f"p_{c}" for c in CLASSES],
               "energy_e", "peak_e", "n_pixels", "length_px", "length_um", "width_px", "angle_deg",
               "elongation", "curvature", "sharpness", "size_px", "touches_edge"]
FRAME_COLUMNS = ["frame", "product", "source", "instrument", "method", "time_start", "time", "exptime_s",
                 "gain", "gain_source", "pixsize_um", "n_pixels", "n_valid_pixels", "area_cm2", "n_regions",
                 *[f"n_{c}" for c in CLASSES]]


def _num(hdr, key, path, required=True) -> float | None:
    """A positive number from the header; for an optional key, absent or <= 0 (e.g. -1) means unknown."""
    v = hdr.get(key)
    if not required and isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0:
        return None
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise OrbitmlInputError(f"header keyword {key} missing", path)
        return None
    try:
        out = float(v)
    except (TypeError, ValueError):
        raise OrbitmlInputError(f"header keyword {key} = {v!r} is not a number", path) from None
    if not np.isfinite(out) or out <= 0:
        raise OrbitmlInputError(f"header keyword {key} = {v!r} must be positive", path)
    return out


def _times(hdr, exptime) -> tuple[str | None, str | None]:
    raw = hdr.get("DATE-OBS")
    if not raw:
        return None, None
    try:
        t0 = datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
    except ValueError:
        return None, None
    if t0.tzinfo is not None:
        t0 = t0.replace(tzinfo=None)
    mid = t0 + timedelta(seconds=(exptime or 0.0) / 2.0)
    return t0.isoformat(timespec="milliseconds"), mid.isoformat(timespec="milliseconds")


def product_hits(prod: Product, classifier: HitClassifier) -> tuple[pd.DataFrame, dict]:
    """(hit rows, frame row) of one product."""
    hdr, path = prod.header, prod.path
    gain = _num(hdr, "GAIN", path)
    pix = _num(hdr, "PIXSIZE", path)
    exptime = _num(hdr, "EXPTIME", path, required=False)
    t_start, t_mid = _times(hdr, exptime)
    valid = np.isfinite(prod.sci) & np.isfinite(prod.clean)
    sat = _num(hdr, "SATURATE", path, required=False)
    if sat is not None:  # saturated pixels cannot register a hit: not part of the exposed area
        valid &= prod.sci < sat
    table = hit_table(prod.sci * np.float32(gain), prod.clean * np.float32(gain), prod.mask & valid)
    proba = classifier.predict_proba(table)
    cls = np.asarray(CLASSES)[np.argmax(proba, axis=1)] if len(table) else np.array([], dtype=str)
    hits = pd.DataFrame({
        "frame": prod.frame, "time": t_mid, "hit": table["label"].to_numpy(), "x": table["x"], "y": table["y"],
        "class": cls, "is_cosmic": np.isin(cls, COSMIC_CLASSES),
        **{f"p_{c}": proba[:, i] for i, c in enumerate(CLASSES)},
        "energy_e": table["energy_e"], "peak_e": table["peak_e"], "n_pixels": table["n_pixels"],
        "length_px": table["length_px"], "length_um": table["length_px"] * pix, "width_px": table["width_px"],
        "angle_deg": table["orientation_deg"], "elongation": table["elongation"],
        "curvature": table["curvature"], "sharpness": table["sharpness"], "size_px": table["size_px"],
        "touches_edge": table["touches_edge"],
    }, columns=HIT_COLUMNS)
    n_valid = int(valid.sum())
    row = {
        "frame": prod.frame, "product": str(path), "source": str(hdr.get("ORBSRC", "")),
        "instrument": str(hdr.get("INSTRUME", "")), "method": str(hdr.get("DETMETH", "")),
        "time_start": t_start, "time": t_mid, "exptime_s": exptime, "gain": gain,
        "gain_source": str(hdr.get("ORBGAINS", "")), "pixsize_um": pix, "n_pixels": int(prod.sci.size),
        "n_valid_pixels": n_valid, "area_cm2": n_valid * (pix * 1e-4) ** 2, "n_regions": len(table),
        **{f"n_{c}": int((cls == c).sum()) for c in CLASSES},
    }
    return hits, row


def find_products(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Products named directly or found (not recursively) in folders, sorted by name."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob(f"*{SUFFIX}"))
            if not found:
                raise OrbitmlInputError(f"no *{SUFFIX} products in this folder", p)
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise OrbitmlInputError("no such file or folder", p)
    return out


def build_catalog(products: Iterable[Path], classifier: HitClassifier,
                  on_error: Callable[[OrbitmlInputError], None] | None = None,
                  progress: Callable[[Path], None] | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(hits, frames, errors) over products; a bad product is reported through ``on_error`` and skipped."""
    hit_tables, rows, errors = [], [], []
    for path in products:
        try:
            hits, row = product_hits(read_product(path), classifier)
        except OrbitmlInputError as exc:
            errors.append(str(exc))
            if on_error:
                on_error(exc)
        else:
            hit_tables.append(hits)
            rows.append(row)
        if progress:
            progress(path)
    # the same stem from two folders: name those frames by their product path instead
    stems = [r["frame"] for r in rows]
    for row, hits in zip(rows, hit_tables, strict=True):
        if stems.count(row["frame"]) > 1:
            row["frame"] = row["product"]
            hits["frame"] = row["product"]
    frames = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    frames["exptime_s"] = pd.to_numeric(frames["exptime_s"]).astype(float)  # unknown -> NaN
    non_empty = [t for t in hit_tables if len(t)]
    hits = pd.concat(non_empty, ignore_index=True) if non_empty else pd.DataFrame(columns=HIT_COLUMNS)
    return hits, frames, errors


def frames_path(catalog: str | os.PathLike) -> Path:
    p = Path(catalog)
    return p.with_name(f"{p.stem}.frames{p.suffix}")


def write_catalog(hits: pd.DataFrame, frames: pd.DataFrame, out: str | os.PathLike,
                  overwrite: bool = False) -> tuple[Path, Path]:
    """Write the hit table to ``out`` (.parquet or .csv) and the frame table beside it."""
    out = Path(out)
    fmt = out.suffix.lower()
    if fmt not in (".parquet", ".csv"):
        raise OrbitmlInputError("catalogue must end in .parquet or .csv", out)
    fp = frames_path(out)
    for table, target in ((hits, out), (frames, fp)):
        with atomic_path(target, overwrite=overwrite) as tmp:
            if fmt == ".parquet":
                table.to_parquet(tmp, index=False)
            else:
                table.to_csv(tmp, index=False)
    return out, fp


def read_catalog(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(hits, frames) of a catalogue written by :func:`write_catalog`."""
    path = Path(path)
    fp = frames_path(path)
    for p in (path, fp):
        if not p.is_file():
            raise OrbitmlInputError("catalogue file not found" + (" (the frame table written beside the "
                                    "hit table by `orbitml cosmic catalog`)" if p == fp else ""), p)
    reader = pd.read_parquet if path.suffix.lower() == ".parquet" else pd.read_csv
    try:
        hits, frames = reader(path), reader(fp)
    except Exception as exc:
        raise OrbitmlInputError(f"cannot read catalogue ({type(exc).__name__}: {exc})", path) from exc
    for t, p, need in ((hits, path, ("frame", "class")), (frames, fp, ("frame", "exptime_s", "area_cm2"))):
        missing = [c for c in need if c not in t.columns]
        if missing:
            raise OrbitmlInputError(f"not an orbitml cosmic catalogue: columns {missing} missing", p)
    return hits, frames
