"""HiRISE images in, grayscale chunks out: the ingestion step of the ice workflow.

``open_image(path)`` accepts a HiRISE RDR (the ``.LBL`` with its ``.JP2``, or the ``.JP2`` alone),
an EDR ``.IMG`` (PDS3, attached label), an ISIS3 cube or a GeoTIFF, through
:func:`orbitml.io.open_scene` / :mod:`orbitml.tiling.sources` -- lazily, by windows; nothing reads a
whole image.  Colour products (COLOR RDRs: IR/RED/BG, or any 3-band RGB) are reduced to grayscale
by the mean of their bands window by window; a product that says it is colour but lacks its three
bands is refused.  ``chunk_index(path, settings)`` runs :class:`orbitml.tiling.TileChunker` with
the settings' chunk size, overlap (default half a chunk, so every patch smaller than a quarter chunk
lies whole in some chunk) and black/no-data policy (default: the paper's, drop any chunk with a black
pixel).  ``write_chunk_index`` writes ``<stem>_chunks.csv`` (windows and bounds) and
``<stem>_chunks.geojson`` (footprints in the product's CRS).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.ice.prep import ChunkSettings
from orbitml.tiling.sources import Source, open_source

__all__ = ["GraySource", "open_image", "chunk_index", "write_chunk_index", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".tif", ".tiff", ".jp2", ".lbl", ".img", ".cub")
_COLOUR_HINTS = ("COLOR", "_IRB", "_RGB")


class GraySource(Source):
    """One-band view of a source: the band mean for colour products; read errors become input errors.

    A pixel is black (0) when any band is black, no-data or non-finite.
    """

    def __init__(self, src: Source, path: str | os.PathLike | None = None):
        self.src = src
        self.path = None if path is None else Path(path)
        self.height, self.width, self.count = src.height, src.width, 1
        self.colour = src.count > 1
        self.dtype = np.dtype(np.float32) if self.colour else src.dtype
        self.nodata = 0 if self.colour else src.nodata
        self.crs, self.transform = src.crs, src.transform
        self.name = src.name
        self.band_names = None
        self.reads: list[tuple[int, int, int, int]] = []  # windows read (for tests and diagnostics)

    def read(self, r0: int, r1: int, c0: int = 0, c1: int | None = None) -> np.ndarray:
        c1 = self.width if c1 is None else c1
        self.reads.append((r0, r1, c0, c1))
        try:
            block = self.src.read(r0, r1, c0, c1)
        except OrbitmlInputError:
            raise
        except Exception as exc:  # GDAL / dask errors from a truncated or corrupt file
            msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise OrbitmlInputError(f"pixel data cannot be read at rows {r0}-{r1} ({msg}); the file may be "
                                    "truncated or corrupt", self.path) from None
        if not self.colour:
            return block
        from orbitml.tiling.sources import invalid_mask

        bad = invalid_mask(block, self.src.nodata) | (block == 0).any(axis=0)
        gray = block.astype(np.float32).mean(axis=0)
        gray[bad] = 0
        return gray[None]

    def __getstate__(self):
        st = dict(self.__dict__)
        st["reads"] = []
        return st


def _colour_hint(path: Path, src: Source, attrs: dict[str, Any]) -> bool:
    text = " ".join(str(v) for v in (path.name, attrs.get("product_id", ""), attrs.get("product_type", ""))).upper()
    return any(h in text for h in _COLOUR_HINTS)


def open_image(path: str | os.PathLike) -> GraySource:
    """A lazy grayscale source over a HiRISE product or GeoTIFF; clear errors for what cannot be read."""
    path = Path(path)
    if not path.exists():
        raise OrbitmlInputError("no such image", path)
    if path.is_dir():
        raise OrbitmlInputError("is a folder, expected an image file", path)
    if path.suffix.lower() == ".jp2":  # prefer the PDS label beside an RDR JP2 (instrument facts)
        for lbl in (path.with_suffix(".LBL"), path.with_suffix(".lbl")):
            if lbl.exists():
                path = lbl
                break
    try:
        src = open_source(path)
    except OrbitmlInputError:
        raise
    except Exception as exc:
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise OrbitmlInputError(f"cannot read as an image ({msg})", path) from None
    attrs = getattr(getattr(src, "scene", None), "attrs", {}) or {}
    if src.count == 2 or (src.count != 3 and src.count > 1) or (_colour_hint(path, src, attrs) and src.count != 3):
        raise OrbitmlInputError(f"colour product without its bands: expected 3 bands (IR, RED, BG or R, G, B) or "
                                f"one grayscale band, found {src.count}", path)
    gs = GraySource(src, path)
    if src.count == 3:
        gs.name = src.name
    return gs


INDEX_BLOCK_BYTES = 16 * 2**20  # windows of the black-pixel scan: small, so memory does not follow the width

def chunk_index(path_or_source: Any, settings: ChunkSettings):
    """The :class:`~orbitml.tiling.TileIndex` of one image; errors for an image with no valid pixels."""
    from orbitml.tiling import TileChunker

    src = path_or_source if isinstance(path_or_source, GraySource) else open_image(path_or_source)
    chunker = TileChunker(size=settings.chunk, overlap=settings.overlap, black_policy=settings.black_policy,
                          black_value=settings.black_value)
    index = chunker.tiles(src, max_block_bytes=INDEX_BLOCK_BYTES)  # the black-pixel scan, window by window
    if index.tiles and all(t.black_fraction >= 1.0 for t in index.tiles):
        raise OrbitmlInputError("image has no valid pixels (every pixel is black or no-data)", src.path)
    return index


def write_chunk_index(index, out_dir: str | os.PathLike, stem: str | None = None, overwrite: bool = True,
                      extra: dict[str, list] | None = None) -> dict[str, Path]:
    """``<stem>_chunks.csv`` and ``<stem>_chunks.geojson`` in ``out_dir`` (all chunks, with ``kept``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or Path(index.name).stem
    return {"csv": index.to_csv(out / f"{stem}_chunks.csv", overwrite=overwrite),
            "geojson": index.to_geojson(out / f"{stem}_chunks.geojson", overwrite=overwrite)}


def write_chunk_images(index, out_dir: str | os.PathLike, stem: str | None = None, fmt: str = "png",
                       batch_size: int = 16) -> list[Path]:
    """Every kept chunk as ``<stem>_r<row>_c<col>.<png|tif>`` (8-bit PNG, or TIFF in the source type)."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or Path(index.name).stem
    written = []
    for tiles, pix in index.batches(batch_size=batch_size):
        for t, p in zip(tiles, pix, strict=True):
            a = p[0]
            name = out / f"{stem}_r{t.row}_c{t.col}.{fmt}"
            if fmt == "png" or a.dtype == np.uint8:
                a8 = a if a.dtype == np.uint8 else np.clip(np.rint(a), 0, 255).astype(np.uint8)
                Image.fromarray(a8).save(name if fmt == "png" else name.with_suffix(".tif"))
            else:
                Image.fromarray(a.astype(np.float32)).save(name.with_suffix(".tif"))
            written.append(name)
    return written
