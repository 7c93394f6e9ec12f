"""Scan HiRISE images for ice: per-chunk probabilities, image-level rules, ranking, products.

For each image the chunks of the model card's grid (chunk size, overlap, black policy) are read strip
by strip (:meth:`orbitml.tiling.TileIndex.batches`), prepared exactly as in training (defect repair
when the card enables it, block-mean downsampling, per-chunk normalisation) and classified.

Image-level rules (threshold 0.6 by default, the paper's):

* ``none``: no chunk above the threshold -> ice-free;
* ``one``: exactly one chunk above it; ``several``: two or more (the paper's three classes);
* ``corroborated``: some chunk above the threshold is corroborated by an overlapping window above the
  corroborating threshold (the card's ``corroboration.threshold``; default the chunk threshold).  The
  windows are the grid's chunks and, for a positive chunk that no grid chunk corroborates, up to 8
  *confirmation looks*: the chunk shifted by a quarter chunk (``corroboration.shift``) in each
  direction, clipped to the image and refused by the same black policy.  A real patch smaller than
  half a chunk that is whole in the chunk is whole in one of its looks (it cannot be within a quarter
  chunk of two opposite edges), while a look-alike cut at the chunk's edge is, in the looks, whole
  (and looks like what it is) or gone.  The grid alone misses patches across a chunk's middle line
  (whole in one chunk per axis) and beside chunks dropped for black margins.  Last, a lone positive
  chunk counts when its evidence -- the peak of the input-gradient magnitude -- lies where no other
  kept window sees a quarter-chunk box around it whole (``edge_only``: at the image edge or beside
  refused chunks, no other window could confirm it; ``corroboration.edge``).  Looks and peaks are
  computed only for unconfirmed positive chunks, so they cost a few extra forward passes per image.

``flagged`` follows ``rule``: ``paper`` (any chunk above the threshold) or ``corroborated``
(``auto``: corroborated when the grid overlaps, else paper).  Images are ranked by evidence: the
number of corroborated positive chunks, then the number of positive chunks, then the top
probability.

``scan.json`` records the corroboration settings, the looks (window, chunk they were made for,
probability), ``n_corroborated_by_look``, ``n_edge_only`` and the edge-only chunks with their peaks.

Outputs per image in ``out/``: ``<stem>_chunks.csv`` and ``<stem>_chunks.geojson`` (footprints in
the product's CRS with ``prob``), ``<stem>_heatmap.png`` (probabilities over a downsampled browse
image) and ``<stem>.scan.json`` (the summary; written last, so its presence means the image is done
and a rerun skips it).
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.ice.anomaly import AnomalyReport
from orbitml.ice.prep import ChunkSettings, prepare_batch, prepare_chunk

__all__ = ["scan_image", "scan_many", "image_verdict", "confirmation_windows", "effective_rule", "Look", "RULES",
           "browse_image", "corroboration_settings", "evidence_peak", "evidence_unseen"]

RULES = ("auto", "paper", "corroborated")
CONFIRM_SHIFT = 0.25  # confirmation looks are shifted by a quarter chunk


@dataclass(frozen=True)
class Look:
    """A confirmation window of one chunk size at ``(row, col)``, made for the grid chunk ``for_chunk``."""

    row: int
    col: int
    for_chunk: int


def effective_rule(rule: str, overlap: int) -> str:
    """``auto`` -> ``corroborated`` when the grid overlaps, else ``paper``; other rules unchanged."""
    if rule not in RULES:
        raise OrbitmlInputError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    return ("corroborated" if overlap > 0 else "paper") if rule == "auto" else rule


def image_verdict(tiles, probs: np.ndarray, size: int, overlap: int, threshold: float = 0.6,
                  rule: str = "auto", corroborate_threshold: float | None = None, looks=(), look_probs=(),
                  edge_only=()) -> dict[str, Any]:
    """The paper's class (none / one / several), the corroboration count, ``flagged`` and an evidence score.

    ``tiles``: the grid chunks (anything with ``row`` and ``col``) and ``probs`` their probabilities;
    ``looks`` / ``look_probs``: confirmation windows (:class:`Look`) and theirs.  A grid chunk above
    ``threshold`` is *corroborated* when another window of the same size overlapping it (a grid chunk
    or a look) is above ``corroborate_threshold`` (default: ``threshold``).  ``unconfirmed`` lists the
    grid chunks above the threshold that are not corroborated (the ones a scan makes looks for).
    ``edge_only``: grid chunks whose evidence lies where no other window sees it whole
    (:func:`evidence_unseen`); above the threshold they count as corroborated, since no other window
    could confirm them (``n_edge_only``).
    """
    eff = effective_rule(rule, overlap)
    probs = np.asarray(probs, float)
    look_probs = np.asarray(look_probs, float)
    if len(tiles) != len(probs) or len(looks) != len(look_probs):
        raise OrbitmlInputError(f"{len(tiles)} chunks with {len(probs)} probabilities, {len(looks)} looks with "
                                f"{len(look_probs)}")
    cthr = float(threshold if corroborate_threshold is None else corroborate_threshold)
    pos = [i for i, p in enumerate(probs) if p > threshold]
    n_pos = len(pos)
    rows = np.array([t.row for t in tiles] + [lk.row for lk in looks], np.int64)
    cols = np.array([t.col for t in tiles] + [lk.col for lk in looks], np.int64)
    strong = np.concatenate([probs, look_probs]) > cthr
    confirmed, by_look, alone = [], 0, 0
    edge_only = {int(i) for i in edge_only}
    for i in pos:
        near = strong & (np.abs(rows - rows[i]) < size) & (np.abs(cols - cols[i]) < size)
        near[i] = False
        if near.any():
            confirmed.append(i)
            by_look += int(not near[:len(tiles)].any())
        elif i in edge_only:
            confirmed.append(i)
            alone += 1
    done = set(confirmed)
    paper_class = "none" if n_pos == 0 else ("one" if n_pos == 1 else "several")
    flagged = bool(confirmed) if eff == "corroborated" else n_pos > 0
    top = float(probs.max()) if probs.size else 0.0
    evidence = float(len(confirmed) + 0.1 * n_pos + 0.01 * top)
    return {"paper_class": paper_class, "n_chunks": int(len(probs)), "n_positive": n_pos,
            "n_corroborated": len(confirmed), "n_corroborated_by_look": by_look, "n_edge_only": alone,
            "unconfirmed": [i for i in pos if i not in done], "max_prob": top, "rule": eff,
            "flagged": flagged, "evidence": evidence, "threshold": float(threshold), "corroborate_threshold": cthr}


def confirmation_windows(tiles, chunks: list[int], size: int, shape: tuple[int, int], shift: int,
                         taken: set[tuple[int, int]] | None = None) -> list[Look]:
    """Windows shifted by ``shift`` px (8 directions) from each grid chunk in ``chunks``, clipped to the
    image ``shape``; a window equal to its chunk, to a position in ``taken`` (the grid: already
    classified or refused there) or to an earlier look is left out.

    Why a quarter chunk: a patch smaller than half a chunk that lies whole in a chunk is whole in the
    chunk shifted by ``+shift`` or by ``-shift`` on each axis (it cannot be within ``shift`` of both
    edges), so some diagonal look sees it whole where the image and the black policy allow; a patch
    cut at the chunk's edge is, in the looks, either whole (and looks like what it is) or gone.
    """
    h, w = shape
    seen = set(taken or ())
    out: list[Look] = []
    for k in chunks:
        t = tiles[k]
        for dr in (-shift, 0, shift):
            for dc in (-shift, 0, shift):
                r = min(max(t.row + dr, 0), h - size)
                c = min(max(t.col + dc, 0), w - size)
                if (r, c) == (t.row, t.col) or (r, c) in seen:
                    continue
                seen.add((r, c))
                out.append(Look(int(r), int(c), int(k)))
    return out


def browse_image(src, max_px: int = 1024) -> tuple[np.ndarray, int]:
    """A decimated ``(h, w)`` browse image (every f-th pixel, read strip by strip) and its factor f."""
    f = max(1, int(np.ceil(max(src.height, src.width) / max_px)))
    from orbitml.tiling.chunker import MAX_WINDOW_PX

    rows = []
    step = max(f, (1024 // f) * f)  # strips of at most ~1024 rows, read in windows at most MAX_WINDOW_PX wide
    wstep = max(f, (MAX_WINDOW_PX // f) * f)
    for r0 in range(0, src.height, step):
        r1 = min(src.height, r0 + step)
        parts = [src.read(r0, r1, c0, min(src.width, c0 + wstep))[0][::f, ::f].astype(np.float32)
                 for c0 in range(0, src.width, wstep)]
        rows.append(np.concatenate(parts, axis=1))
    return np.concatenate(rows, axis=0), f


def _heatmap(path: Path, browse: np.ndarray, f: int, tiles, probs, threshold: float, title: str,
             notice: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from orbitml.io.atomic import atomic_path

    heat = np.full(browse.shape, np.nan, np.float32)
    for t, p in zip(tiles, probs, strict=True):
        sl = (slice(t.row // f, -(-(t.row + t.height) // f)), slice(t.col // f, -(-(t.col + t.width) // f)))
        cur = heat[sl]
        heat[sl] = np.where(np.isnan(cur), p, np.fmax(cur, p))
    h, w = browse.shape
    fig, ax = plt.subplots(figsize=(6, 6 * h / max(w, 1) + 0.6))
    valid = browse[browse > 0]
    lo, hi = (np.percentile(valid, [1, 99]) if valid.size else (0, 1))
    ax.imshow(browse, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    im = ax.imshow(np.ma.masked_invalid(heat), cmap="inferno", vmin=0, vmax=1, alpha=0.45, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.04, label="ice probability (max over chunks)")
    for t, p in zip(tiles, probs, strict=True):
        if p > threshold:
            ax.add_patch(plt.Rectangle((t.col / f, t.row / f), t.width / f, t.height / f, fill=False, ec="cyan",
                                       lw=1))
    ax.set_title(title + (f"\n{notice}" if notice else ""), fontsize=7)
    ax.set_axis_off()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def _forward(net, x: np.ndarray, device: str) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return torch.sigmoid(net(torch.from_numpy(x).to(device))[:, 0]).float().cpu().numpy()


def evidence_unseen(tile, peak: tuple[float, float], others, size: int, half: float) -> bool:
    """True when the box of ``2 * half`` px around ``peak`` (chunk pixel coordinates of ``tile``, clipped
    to the chunk) lies whole in none of the ``others`` (windows of ``size`` px with ``row`` / ``col``):
    the evidence sits where only this chunk sees it -- at the image edge or beside chunks the black
    policy refused.  Inside the image, with every look available, this cannot happen for
    ``half < size / 4 - shift / 2`` (see :func:`confirmation_windows`)."""
    r0 = max(tile.row + peak[0] - half, tile.row)
    r1 = min(tile.row + peak[0] + half, tile.row + size)
    c0 = max(tile.col + peak[1] - half, tile.col)
    c1 = min(tile.col + peak[1] + half, tile.col + size)
    for o in others:
        if (o.row, o.col) != (tile.row, tile.col) and o.row <= r0 and r1 <= o.row + size and o.col <= c0 \
                and c1 <= o.col + size:
            return False
    return True


def evidence_peak(net, x: np.ndarray, device: str = "cpu", smooth: int = 1) -> tuple[float, float]:
    """Where in one prepared chunk ``x`` ``(1, in, in)`` the logit's evidence lies: the maximum of the
    input-gradient magnitude, box-smoothed over ``smooth`` px, in input-pixel coordinates (pixel centre)."""
    import torch
    from scipy import ndimage as ndi

    t = torch.from_numpy(np.ascontiguousarray(x[None], np.float32)).to(device).requires_grad_(True)
    with torch.enable_grad():
        net(t)[0, 0].backward()
    g = np.abs(t.grad[0, 0].detach().cpu().numpy())
    if smooth > 1:
        g = ndi.uniform_filter(g, size=smooth, mode="constant")
    r, c = np.unravel_index(int(np.argmax(g)), g.shape)
    return float(r) + 0.5, float(c) + 0.5


def corroboration_settings(card: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card's ``corroboration`` section (``threshold``: the corroborating window's threshold, None =
    the chunk threshold; ``looks``: confirmation looks for lone positives; ``shift``: their shift as a
    fraction of the chunk; ``edge``: a lone positive whose evidence no other window sees whole counts),
    updated by ``overrides`` (None values ignored); a card without the section gets the defaults."""
    c = {"threshold": None, "looks": True, "shift": CONFIRM_SHIFT, "edge": True, **(card.get("corroboration") or {})}
    for k, v in (overrides or {}).items():
        if k not in c:
            raise OrbitmlInputError(f"unknown corroboration setting {k!r} (expected one of {', '.join(c)})")
        if v is not None:
            c[k] = v
    if c["threshold"] is not None and not 0 < float(c["threshold"]) < 1:
        raise OrbitmlInputError(f"corroboration threshold must be in (0, 1), got {c['threshold']}")
    if not 0 < float(c["shift"]) < 1:
        raise OrbitmlInputError(f"confirmation shift must be a fraction of the chunk in (0, 1), got {c['shift']}")
    return c


def _looks(src, index, tiles, chunks, settings: ChunkSettings, net, device: str, shift: float, batch_size: int
           ) -> tuple[list[Look], np.ndarray]:
    """Classify the confirmation windows of ``chunks`` that the black policy keeps."""
    from orbitml.tiling import TileChunker

    size = settings.chunk
    chunker = TileChunker(size=size, overlap=settings.overlap, black_policy=settings.black_policy,
                          black_value=settings.black_value)
    taken = {(t.row, t.col) for t in index.tiles}
    cands = confirmation_windows(tiles, chunks, size, (src.height, src.width), max(1, int(round(shift * size))),
                                 taken)
    kept, pix, probs = [], [], []

    def flush() -> None:  # one batch at a time: the looks' pixels are never all in memory
        if pix:
            x, _ = prepare_batch(np.stack(pix), settings, src.nodata)
            probs.append(_forward(net, x, device))
            pix.clear()

    for lk in cands:
        block = src.read(lk.row, lk.row + size, lk.col, lk.col + size)
        if chunker.keep(chunker.black_mask(block, src.nodata))[1]:
            kept.append(lk)
            pix.append(block)
            if len(pix) == batch_size:
                flush()
    flush()
    return kept, (np.concatenate(probs) if probs else np.zeros(0, np.float32))


def _edge_only(src, tiles, chunks, looks, settings: ChunkSettings, net, device: str, shift: float
               ) -> tuple[list[int], dict[int, tuple[float, float]]]:
    """The lone positive ``chunks`` whose evidence peak (:func:`evidence_peak`) no other kept window
    (grid chunk or look) contains with a margin of half a look shift around it."""
    size, f = settings.chunk, settings.factor
    others = list(tiles) + list(looks)
    half = shift * size / 2
    out, peaks = [], {}
    for k in chunks:
        t = tiles[k]
        x, _ = prepare_chunk(src.read(t.row, t.row + size, t.col, t.col + size), settings, src.nodata)
        pr, pc = evidence_peak(net, x, device, smooth=max(1, int(round(settings.input_size / 16))))
        peaks[k] = (pr * f, pc * f)
        if evidence_unseen(t, peaks[k], others, size, half):
            out.append(k)
    return out, peaks


TRIM_EVERY = 8  # batches between heap trims
GDAL_CACHE_MB = 128  # GDAL's default block cache is 5 % of RAM: it would grow with the image read


def scan_image(path: str | os.PathLike, net, card: dict[str, Any], settings: ChunkSettings, out_dir=None, *,
               batch_size: int = 16, device: str = "cpu", rule: str = "auto", threshold: float | None = None,
               corroboration: dict[str, Any] | None = None, heatmap: bool = True, overwrite: bool = True
               ) -> dict[str, Any]:
    """Scan one image; writes its products into ``out_dir`` (when given) and returns its summary.

    ``corroboration`` overrides the card's ``corroboration`` section (:func:`corroboration_settings`);
    it matters only under the corroborated rule.
    """
    import rasterio

    corr = corroboration_settings(card, corroboration)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        return _scan_image(path, net, card, settings, out_dir, batch_size=batch_size, device=device, rule=rule,
                           threshold=threshold, corr=corr, heatmap=heatmap, overwrite=overwrite)


def _scan_image(path, net, card, settings, out_dir, *, batch_size, device, rule, threshold, corr, heatmap,
                overwrite):
    from orbitml.ice.chunks import chunk_index, open_image
    from orbitml.nn.weights import simulated_notice
    from orbitml.tiling.predict import release_free_memory, tune_malloc

    tune_malloc()
    t0 = time.perf_counter()
    path = Path(path)
    src = open_image(path)
    if src.height < settings.chunk or src.width < settings.chunk:
        raise OrbitmlInputError(f"image ({src.height} x {src.width} px) is smaller than the model's chunk size "
                                f"({settings.chunk} px)", path)
    index = chunk_index(src, settings)
    thr = float(card.get("threshold", 0.6) if threshold is None else threshold)
    tiles, probs = [], []
    anomalies = AnomalyReport()
    for n, (batch_tiles, pix) in enumerate(index.batches(batch_size=batch_size), start=1):
        x, rep = prepare_batch(pix, settings, src.nodata)
        anomalies += rep
        probs.append(_forward(net, x, device))
        tiles += batch_tiles
        if n % TRIM_EVERY == 0:
            release_free_memory()  # memory flat however many chunks the image has
    probs_a = np.concatenate(probs) if probs else np.zeros(0, np.float32)
    vkw = dict(size=settings.chunk, overlap=settings.overlap, threshold=thr, rule=rule,
               corroborate_threshold=corr["threshold"])
    verdict = image_verdict(tiles, probs_a, **vkw)
    looks, look_probs = [], np.zeros(0, np.float32)
    if verdict["rule"] == "corroborated" and corr["looks"] and verdict["unconfirmed"]:
        looks, look_probs = _looks(src, index, tiles, verdict["unconfirmed"], settings, net, device, corr["shift"],
                                   batch_size)
        verdict = image_verdict(tiles, probs_a, looks=looks, look_probs=look_probs, **vkw)
    edge_only, peaks = [], {}
    if verdict["rule"] == "corroborated" and corr["edge"] and verdict["unconfirmed"]:
        edge_only, peaks = _edge_only(src, tiles, verdict["unconfirmed"], looks, settings, net, device,
                                      corr["shift"])
        verdict = image_verdict(tiles, probs_a, looks=looks, look_probs=look_probs, edge_only=edge_only, **vkw)
    verdict["unconfirmed"] = [tiles[i].index for i in verdict["unconfirmed"]]  # chunk ids, as in the CSV
    verdict["edge_only"] = [{"chunk": tiles[i].index, "peak_row": tiles[i].row + peaks[i][0],
                             "peak_col": tiles[i].col + peaks[i][1]} for i in edge_only]
    notice = simulated_notice(card)
    crs = index.crs
    summary = {"image": str(path), "name": path.name, "height": src.height, "width": src.width,
               "chunks_total": len(index.tiles), "chunks_kept": len(tiles),
               "chunks_dropped_black": len(index.tiles) - len(tiles), **verdict,
               "hot_pixels": anomalies.hot_pixels, "line_defects": anomalies.lines,
               "defect_pixels": anomalies.pixels, "anomaly_repair": settings.anomaly.enabled,
               "confirmation_looks": corr["looks"], "confirmation_shift": corr["shift"], "edge_rule": corr["edge"],
               "looks": [{"row": lk.row, "col": lk.col, "for_chunk": tiles[lk.for_chunk].index, "prob": float(p)}
                         for lk, p in zip(looks, look_probs, strict=True)],
               "chunk": settings.chunk, "overlap": settings.overlap, "input_size": settings.input_size,
               "crs_wkt": None if crs is None else crs.to_wkt(), "model": card.get("name"),
               "notice": notice, "seconds": round(time.perf_counter() - t0, 3)}
    if out_dir is None:
        summary["_tiles"], summary["_probs"] = tiles, probs_a
        return summary
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    prob_by = {t.index: float(p) for t, p in zip(tiles, probs_a, strict=True)}
    _write_chunks(index, prob_by, out, stem, thr, notice, overwrite)
    if heatmap:
        browse, f = browse_image(src)
        _heatmap(out / f"{stem}_heatmap.png", browse, f, tiles, probs_a, thr,
                 f"{path.name}: {verdict['n_positive']} chunk(s) > {thr:g}, {verdict['n_corroborated']} corroborated",
                 notice)
        summary["heatmap"] = f"{stem}_heatmap.png"
    from orbitml.io.atomic import atomic_path

    with atomic_path(out / f"{stem}.scan.json", overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


def _write_chunks(index, prob_by: dict[int, float], out: Path, stem: str, thr: float, notice, overwrite) -> None:
    import csv
    from dataclasses import asdict

    from orbitml.io.atomic import atomic_path

    fields = [*index.tiles[0].__dataclass_fields__, "prob", "ice"] if index.tiles else []
    with atomic_path(out / f"{stem}_chunks.csv", overwrite=True) as tmp, \
            open(tmp, "w", newline="", encoding="utf-8") as fh:
        if notice:
            fh.write(f"# {notice}\n")
        wr = csv.DictWriter(fh, fieldnames=fields)
        wr.writeheader()
        for t in index.tiles:
            p = prob_by.get(t.index)
            wr.writerow({**asdict(t), "prob": "" if p is None else f"{p:.6f}",
                         "ice": "" if p is None else int(p > thr)})
    feats = []
    for t in index.tiles:
        p = prob_by.get(t.index)
        props = {k: v for k, v in asdict(t).items() if k not in ("left", "bottom", "right", "top")}
        props.update(prob=p, ice=None if p is None else bool(p > thr))
        feats.append({"type": "Feature", "id": t.index, "properties": props,
                      "geometry": {"type": "Polygon", "coordinates": [t.footprint(index.transform)]}})
    doc: dict[str, Any] = {"type": "FeatureCollection", "name": stem}
    crs, wkt = index._crs_member()
    if crs is not None:
        doc["crs"], doc["crs_wkt"] = crs, wkt
    if notice:
        doc["notice"] = notice
    doc["features"] = feats
    with atomic_path(out / f"{stem}_chunks.geojson", overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(doc), encoding="utf-8")


@functools.lru_cache(maxsize=2)
def _cached_model(model_path: str, stamp: tuple):
    from orbitml.ice.train import load_model

    return load_model(model_path)


def _worker_model(model_path: str):
    """The model in a worker process, loaded once per worker (not once per image) while its files are unchanged."""
    from orbitml.nn.weights import weights_path

    w = weights_path(model_path)
    st = w.stat() if w.exists() else None
    return _cached_model(model_path, (st.st_mtime_ns, st.st_size) if st else ())


def _scan_task(path: str, model_path: str, out_dir: str, batch_size: int, rule: str, threshold,
               threads: int = 1, corroboration: dict[str, Any] | None = None) -> dict[str, Any]:
    """One image in a worker process: the model (weights from safetensors, once per worker), scan, summarise."""
    import torch

    torch.set_num_threads(threads)
    net, card, settings = _worker_model(str(model_path))
    try:
        return {"status": "done", **scan_image(path, net, card, settings, out_dir, batch_size=batch_size, rule=rule,
                                               threshold=threshold, corroboration=corroboration)}
    except OrbitmlInputError as exc:
        return {"status": "failed", "image": path, "name": Path(path).name, "error": str(exc)}


def scan_many(paths: list[str | os.PathLike], model_path: str | os.PathLike, out_dir: str | os.PathLike, *,
              workers: int = 1, batch_size: int = 16, rule: str = "auto", threshold: float | None = None,
              corroboration: dict[str, Any] | None = None, overwrite: bool = False,
              device: str = "cpu", progress=None, use_dask: bool | None = None
              ) -> list[dict[str, Any]]:
    """Scan many images; skips images already done (``<stem>.scan.json`` exists) unless ``overwrite``;
    a bad image is reported (``status: failed``) and the others go on.  ``workers > 1`` (or
    ``use_dask=True``): one task per image on a dask LocalCluster of ``workers`` processes."""
    from orbitml.ice.train import load_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net, card, settings = load_model(model_path)
    records: list[dict[str, Any]] = []
    todo: list[str] = []
    for p in paths:
        done = out / f"{Path(p).stem}.scan.json"
        if done.exists() and not overwrite:
            records.append({"status": "skipped", **json.loads(done.read_text(encoding="utf-8"))})
        else:
            todo.append(str(p))
    if (workers > 1 if use_dask is None else use_dask) and todo:
        from orbitml.tiling.predict import dask_client

        with dask_client(workers=workers) as client:
            futs = [client.submit(_scan_task, p, str(model_path), str(out), batch_size, rule, threshold, 1,
                                  corroboration, pure=False) for p in todo]
            for fut in futs:
                records.append(fut.result())
                if progress is not None:
                    progress()
        return records
    net = net.to(device)
    for p in todo:
        try:
            records.append({"status": "done", **scan_image(p, net, card, settings, out, batch_size=batch_size,
                                                           device=device, rule=rule, threshold=threshold,
                                                           corroboration=corroboration)})
        except OrbitmlInputError as exc:
            records.append({"status": "failed", "image": p, "name": Path(p).name, "error": str(exc)})
        if progress is not None:
            progress()
    return records
