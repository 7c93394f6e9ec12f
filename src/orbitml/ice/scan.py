"""Scan HiRISE images for ice: per-chunk probabilities, image-level rules, ranking, products.

For each image the chunks of the model card's grid (chunk size, overlap, black policy) are read strip
by strip (:meth:`orbitml.tiling.TileIndex.batches`), prepared exactly as in training (defect repair
when the card enables it, block-mean downsampling, per-chunk normalisation) and classified.

Image-level rules (threshold 0.6 by default, the paper's):

* ``none``: no chunk above the threshold -> ice-free;
* ``one``: exactly one chunk above it; ``several``: two or more (the paper's three classes);
* ``corroborated``: some chunk above the threshold overlaps another one above it.  With half-chunk
  overlap every point lies in 2 x 2 chunks and a patch smaller than a quarter chunk is whole in all
  of them unless it touches an edge, so a real patch is seen by overlapping chunks, while a lone
  response (a cut or partial look-alike at one chunk's edge) is not confirmed.

``flagged`` follows ``rule``: ``paper`` (any chunk above the threshold) or ``corroborated``
(``auto``: corroborated when the grid overlaps, else paper).  Images are ranked by evidence: the
number of corroborated positive chunks, then the number of positive chunks, then the top
probability.

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
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.ice.anomaly import AnomalyReport
from orbitml.ice.prep import ChunkSettings, prepare_batch

__all__ = ["scan_image", "scan_many", "image_verdict", "RULES", "browse_image"]

RULES = ("auto", "paper", "corroborated")


def _overlapping_pairs(tiles, size: int) -> list[tuple[int, int]]:
    out = []
    pos = [(t.row, t.col) for t in tiles]
    for a in range(len(pos)):
        for b in range(a + 1, len(pos)):
            if abs(pos[a][0] - pos[b][0]) < size and abs(pos[a][1] - pos[b][1]) < size:
                out.append((a, b))
    return out


def image_verdict(tiles, probs: np.ndarray, size: int, overlap: int, threshold: float = 0.6,
                  rule: str = "auto") -> dict[str, Any]:
    """The paper's class (none / one / several), the corroboration count, ``flagged`` and an evidence score."""
    if rule not in RULES:
        raise OrbitmlInputError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    probs = np.asarray(probs, float)
    pos = [i for i, p in enumerate(probs) if p > threshold]
    n_pos = len(pos)
    confirmed: set[int] = set()
    if overlap > 0 and n_pos > 1:
        ptiles = [tiles[i] for i in pos]
        for a, b in _overlapping_pairs(ptiles, size):
            confirmed.update((pos[a], pos[b]))
    paper_class = "none" if n_pos == 0 else ("one" if n_pos == 1 else "several")
    eff = ("corroborated" if overlap > 0 else "paper") if rule == "auto" else rule
    flagged = bool(confirmed) if eff == "corroborated" else n_pos > 0
    top = float(probs.max()) if probs.size else 0.0
    evidence = float(len(confirmed) + 0.1 * n_pos + 0.01 * top)
    return {"paper_class": paper_class, "n_chunks": int(len(probs)), "n_positive": n_pos,
            "n_corroborated": len(confirmed), "max_prob": top, "rule": eff, "flagged": flagged,
            "evidence": evidence, "threshold": threshold}


def browse_image(src, max_px: int = 1024) -> tuple[np.ndarray, int]:
    """A decimated ``(h, w)`` browse image (every f-th pixel, read strip by strip) and its factor f."""
    f = max(1, int(np.ceil(max(src.height, src.width) / max_px)))
    rows = []
    step = max(f, (1024 // f) * f)  # strips of at most ~1024 rows
    for r0 in range(0, src.height, step):
        block = src.read(r0, min(src.height, r0 + step))[0]
        rows.append(block[::f, ::f].astype(np.float32))
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


GDAL_CACHE_MB = 128  # GDAL's default block cache is 5 % of RAM: it would grow with the image read


def scan_image(path: str | os.PathLike, net, card: dict[str, Any], settings: ChunkSettings, out_dir=None, *,
               batch_size: int = 16, device: str = "cpu", rule: str = "auto", threshold: float | None = None,
               heatmap: bool = True, overwrite: bool = True) -> dict[str, Any]:
    """Scan one image; writes its products into ``out_dir`` (when given) and returns its summary."""
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        return _scan_image(path, net, card, settings, out_dir, batch_size=batch_size, device=device, rule=rule,
                           threshold=threshold, heatmap=heatmap, overwrite=overwrite)


def _scan_image(path, net, card, settings, out_dir, *, batch_size, device, rule, threshold, heatmap, overwrite):
    from orbitml.ice.chunks import chunk_index, open_image
    from orbitml.nn.weights import simulated_notice
    from orbitml.tiling.predict import tune_malloc

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
    for batch_tiles, pix in index.batches(batch_size=batch_size):
        x, rep = prepare_batch(pix, settings, src.nodata)
        anomalies += rep
        probs.append(_forward(net, x, device))
        tiles += batch_tiles
    probs_a = np.concatenate(probs) if probs else np.zeros(0, np.float32)
    verdict = image_verdict(tiles, probs_a, settings.chunk, settings.overlap, thr, rule)
    notice = simulated_notice(card)
    crs = index.crs
    summary = {"image": str(path), "name": path.name, "height": src.height, "width": src.width,
               "chunks_total": len(index.tiles), "chunks_kept": len(tiles),
               "chunks_dropped_black": len(index.tiles) - len(tiles), **verdict,
               "hot_pixels": anomalies.hot_pixels, "line_defects": anomalies.lines,
               "defect_pixels": anomalies.pixels, "anomaly_repair": settings.anomaly.enabled,
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
               threads: int = 1) -> dict[str, Any]:
    """One image in a worker process: the model (weights from safetensors, once per worker), scan, summarise."""
    import torch

    torch.set_num_threads(threads)
    net, card, settings = _worker_model(str(model_path))
    try:
        return {"status": "done", **scan_image(path, net, card, settings, out_dir, batch_size=batch_size, rule=rule,
                                               threshold=threshold)}
    except OrbitmlInputError as exc:
        return {"status": "failed", "image": path, "name": Path(path).name, "error": str(exc)}


def scan_many(paths: list[str | os.PathLike], model_path: str | os.PathLike, out_dir: str | os.PathLike, *,
              workers: int = 1, batch_size: int = 16, rule: str = "auto", threshold: float | None = None,
              overwrite: bool = False, device: str = "cpu", progress=None, use_dask: bool | None = None
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
            futs = [client.submit(_scan_task, p, str(model_path), str(out), batch_size, rule, threshold,
                                  pure=False) for p in todo]
            for fut in futs:
                records.append(fut.result())
                if progress is not None:
                    progress()
        return records
    net = net.to(device)
    for p in todo:
        try:
            records.append({"status": "done", **scan_image(p, net, card, settings, out, batch_size=batch_size,
                                                           device=device, rule=rule, threshold=threshold)})
        except OrbitmlInputError as exc:
            records.append({"status": "failed", "image": p, "name": Path(p).name, "error": str(exc)})
        if progress is not None:
            progress()
    return records
