"""Chunk labels: a folder per class of chunk images, or a CSV of (image, window, label).

Folder layout::

    labels/ice/PSP_..._r1024_c512.png      any PNG / TIFF of one chunk (chunk x chunk px)
    labels/no_ice/...

Class folders: ``ice`` (also ``icy``, ``1``) and ``no_ice`` (also ``not_ice``, ``noice``, ``ice_free``,
``other``, ``0``).  The source image of a chunk file is the part of its name before ``_r<row>_c<col>``
(as ``orbitml ice chunk --write-chunks`` names them), else the whole stem.

CSV columns: ``image`` (path, relative to the CSV), ``row``, ``col``, ``label`` (1/0, ice/no_ice) and
optionally ``size``.  The validation split is always by source image (:func:`split_by_image`): no
image gives chunks to both sides, so overlapping chunks cannot leak.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orbitml.errors import OrbitmlInputError

__all__ = ["LabelledChunk", "read_labels", "split_by_image", "read_chunk_pixels", "ChunkReader"]

POSITIVE = {"ice", "icy", "1", "positive", "yes"}
NEGATIVE = {"no_ice", "not_ice", "noice", "ice_free", "icefree", "other", "0", "negative", "no", "none"}
CHUNK_FILES = (".png", ".tif", ".tiff")
_NAME = re.compile(r"^(?P<stem>.+)_r(?P<row>\d+)_c(?P<col>\d+)$")


@dataclass(frozen=True)
class LabelledChunk:
    image: str  # source image (path for CSV labels, name for chunk files)
    label: int
    row: int = 0
    col: int = 0
    size: int = 0
    file: str | None = None  # a chunk image file, else a window of ``image``


def _label_value(v: str, where: str) -> int:
    s = str(v).strip().lower()
    if s in POSITIVE:
        return 1
    if s in NEGATIVE:
        return 0
    raise OrbitmlInputError(f"unknown label {v!r} (use 1/ice or 0/no_ice)", where)


def _one_class_check(chunks: list[LabelledChunk], path) -> None:
    if not chunks:
        raise OrbitmlInputError("no labelled chunks found", path)
    classes = {c.label for c in chunks}
    if len(classes) < 2:
        name = "ice" if 1 in classes else "no_ice"
        raise OrbitmlInputError(f"labels have one class only ({len(chunks)} '{name}' chunks); a classifier needs "
                                "both ice and no_ice examples", path)


def _from_folder(folder: Path, chunk: int) -> list[LabelledChunk]:
    out = []
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise OrbitmlInputError("label folder has no class subfolders (expected ice/ and no_ice/)", folder)
    for sub in subs:
        lab = _label_value(sub.name, str(sub))
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() not in CHUNK_FILES:
                continue
            m = _NAME.match(f.stem)
            image, row, col = (m["stem"], int(m["row"]), int(m["col"])) if m else (f.stem, 0, 0)
            out.append(LabelledChunk(image, lab, row, col, chunk, str(f)))
    _one_class_check(out, folder)
    return out


def _from_csv(path: Path, chunk: int) -> list[LabelledChunk]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    need = {"image", "row", "col", "label"}
    if not rows or not need <= set(rows[0]):
        raise OrbitmlInputError(f"label CSV needs columns {sorted(need)} (and optionally size)", path)
    out = []
    for k, r in enumerate(rows, start=2):
        where = f"{path}:{k}"
        try:
            row, col = int(r["row"]), int(r["col"])
            size = int(r.get("size") or chunk)
        except ValueError:
            raise OrbitmlInputError("row, col and size must be integers", where) from None
        if size != chunk:
            raise OrbitmlInputError(f"labelled window is {size} px but the chunk size is {chunk} px", where)
        img = Path(r["image"])
        img = img if img.is_absolute() else path.parent / img
        out.append(LabelledChunk(str(img), _label_value(r["label"], where), row, col, size, None))
    _one_class_check(out, path)
    return out


def read_labels(path: str | os.PathLike, chunk: int) -> list[LabelledChunk]:
    """Labelled chunks from a class folder tree or a CSV; clear errors for one class, bad labels, bad sizes."""
    path = Path(path)
    if not path.exists():
        raise OrbitmlInputError("no such label folder or CSV", path)
    return _from_folder(path, chunk) if path.is_dir() else _from_csv(path, chunk)


def split_by_image(chunks: list[LabelledChunk], val_fraction: float, seed: int = 0
                   ) -> tuple[list[LabelledChunk], list[LabelledChunk], list[str], list[str]]:
    """``(train, val, train_images, val_images)``: whole source images go to validation, chosen at random
    (seeded) until about ``val_fraction`` of the chunks are there; both classes in validation when possible."""
    images = sorted({c.image for c in chunks})
    if val_fraction <= 0:
        return list(chunks), [], images, []
    if len(images) < 2:
        raise OrbitmlInputError(f"all labelled chunks come from one source image ({images[0]}); a validation split "
                                "by image needs at least two images (or set val_fraction: 0)")
    rng = np.random.default_rng(seed)
    n_by = {im: 0 for im in images}
    pos_by = {im: 0 for im in images}
    for c in chunks:
        n_by[c.image] += 1
        pos_by[c.image] += c.label
    best = None
    for _ in range(64):  # a few random draws; keep one that has both classes and the closest fraction
        order = [images[i] for i in rng.permutation(len(images))]
        val, n = [], 0
        for im in order:
            if n >= val_fraction * len(chunks) or len(val) == len(images) - 1:
                break
            val.append(im)
            n += n_by[im]
        pos = sum(pos_by[i] for i in val)
        both = 0 < pos < n
        score = (not both, abs(n / len(chunks) - val_fraction))
        if best is None or score < best[0]:
            best = (score, val)
    val_images = sorted(best[1])
    vs = set(val_images)
    train = [c for c in chunks if c.image not in vs]
    val = [c for c in chunks if c.image in vs]
    if len({c.label for c in train}) < 2:
        raise OrbitmlInputError("after the split by image the training side has one class; add labelled images")
    return train, val, sorted({c.image for c in train}), val_images


class ChunkReader:
    """Reads the pixels ``(S, S)`` of labelled chunks (files or windows), keeping one source per image."""

    def __init__(self):
        self._sources: dict[str, object] = {}

    def __call__(self, c: LabelledChunk) -> np.ndarray:
        return read_chunk_pixels(c, self._sources)

    def __getstate__(self):
        return {"_sources": {}}


def read_chunk_pixels(c: LabelledChunk, sources: dict | None = None) -> np.ndarray:
    if c.file is not None:
        from PIL import Image

        try:
            with Image.open(c.file) as im:
                a = np.asarray(im)
        except OSError as exc:
            raise OrbitmlInputError(f"cannot read chunk image ({exc})", c.file) from None
        if a.ndim == 3:
            a = a[..., :3].mean(axis=2)
        if a.shape != (c.size, c.size):
            raise OrbitmlInputError(f"chunk image is {a.shape[1]} x {a.shape[0]} px but the chunk size is "
                                    f"{c.size} px", c.file)
        return a
    from orbitml.ice.chunks import open_image

    sources = {} if sources is None else sources
    if c.image not in sources:
        sources[c.image] = open_image(c.image)
    src = sources[c.image]
    if c.row < 0 or c.col < 0 or c.row + c.size > src.height or c.col + c.size > src.width:
        raise OrbitmlInputError(f"labelled window rows {c.row}-{c.row + c.size}, cols {c.col}-{c.col + c.size} "
                                f"lies outside the image ({src.height} x {src.width})", c.image)
    return src.read(c.row, c.row + c.size, c.col, c.col + c.size)[0]
