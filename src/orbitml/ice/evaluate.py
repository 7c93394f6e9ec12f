"""``orbitml ice evaluate``: chunk- and image-level precision, recall, ROC-AUC and calibration on held-out images.

Input: a CSV with columns ``image`` (path relative to the CSV), ``has_ice`` (0/1, the image-level
truth) and optionally ``truth`` (a raster of patch ids, 0 = no ice, aligned with the image) and
``split`` (only ``heldout`` rows are used when the column exists).  Every image is scanned with the
model (its card's chunking, normalisation and anomaly settings).  Chunk labels come from the truth
mask exactly as in training: a chunk is ice when some patch lies at least 90% inside it, no-ice
when no patch pixel is inside, and left out when a patch is cut by its edge.
Calibration: reliability bins (mean predicted probability against the observed ice fraction per
probability decile) and the Brier score.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.ice.train import chunk_metrics

__all__ = ["read_image_truth", "chunk_truth", "reliability", "image_metrics", "evaluate"]


def read_image_truth(path: str | os.PathLike, split: str | None = "heldout") -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise OrbitmlInputError("no such image truth CSV", path)
    from orbitml.io.text import read_text

    text = read_text(path, "image truth CSV")
    rows = [r for r in csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))]
    if not rows or not {"image", "has_ice"} <= set(rows[0]):
        raise OrbitmlInputError("image truth CSV needs columns image, has_ice (and optionally truth, split)", path)
    if split and "split" in rows[0]:
        rows = [r for r in rows if r["split"] == split]
    if not rows:
        raise OrbitmlInputError(f"no images with split {split!r}", path)
    out = []
    for i, r in enumerate(rows, 2):
        if str(r.get("has_ice", "")).strip() not in ("0", "1"):
            raise OrbitmlInputError(f"row {i}: has_ice must be 0 or 1, got {r.get('has_ice')!r}", path)
        img = Path(r["image"])
        t = r.get("truth") or None
        out.append({"image": str(img if img.is_absolute() else path.parent / img), "has_ice": int(r["has_ice"].strip()),
                    "truth": None if t is None else str(Path(t) if Path(t).is_absolute() else path.parent / t)})
    return out


def chunk_truth(truth_path: str | os.PathLike, tiles, whole: float = 0.9) -> np.ndarray:
    """Chunk labels (1, 0, or -1 for a cut patch) from a patch-id raster, read by windows."""
    from rasterio.windows import Window

    from orbitml.io._gdal import open_dataset

    with open_dataset(Path(truth_path)) as ds:
        totals = np.zeros(1, np.int64)
        for r0 in range(0, ds.height, 1024):
            a = ds.read(1, window=Window(0, r0, ds.width, min(1024, ds.height - r0))).astype(np.int64)
            bc = np.bincount(a.ravel())
            if bc.size > totals.size:
                totals = np.pad(totals, (0, bc.size - totals.size))
            totals[:bc.size] += bc
        out = np.empty(len(tiles), np.int8)
        for k, t in enumerate(tiles):
            a = ds.read(1, window=Window(t.col, t.row, t.width, t.height)).astype(np.int64)
            bc = np.bincount(a.ravel(), minlength=totals.size)[1:]
            frac = bc / np.maximum(totals[1:], 1)
            out[k] = 1 if (frac >= whole).any() else (0 if not bc.any() else -1)
    return out


def reliability(prob: np.ndarray, y: np.ndarray, n_bins: int = 10) -> list[dict[str, Any]]:
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(prob, edges[1:-1]), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = idx == b
        rows.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(m.sum()),
                     "mean_prob": float(prob[m].mean()) if m.any() else float("nan"),
                     "ice_fraction": float(y[m].mean()) if m.any() else float("nan")})
    return rows


def image_metrics(flagged: np.ndarray, evidence: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    flagged, truth = np.asarray(flagged, bool), np.asarray(truth, bool)
    tp, fp = int((flagged & truth).sum()), int((flagged & ~truth).sum())
    fn, tn = int((~flagged & truth).sum()), int((~flagged & ~truth).sum())
    return {"n_images": int(len(truth)), "n_ice_images": int(truth.sum()), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan"),
            "ice_free_correct": tn / (tn + fn) if tn + fn else float("nan"),
            "roc_auc": float(roc_auc_score(truth, evidence)) if 0 < truth.sum() < len(truth) else float("nan")}


def evaluate(images_csv: str | os.PathLike, model: str | os.PathLike, out: str | os.PathLike | None = None, *,
             split: str | None = "heldout", rule: str = "auto", threshold: float | None = None,
             corroboration: dict[str, Any] | None = None, batch_size: int = 16, heatmaps: bool = False
             ) -> dict[str, Any]:
    """Scan the held-out images and score them; writes ``metrics.json`` (+ reliability plot) into ``out``."""
    from orbitml.ice.scan import corroboration_settings, scan_image
    from orbitml.ice.train import load_model
    from orbitml.nn.weights import simulated_notice

    rows = read_image_truth(images_csv, split)
    net, card, settings = load_model(model)
    thr = float(card.get("threshold", 0.6) if threshold is None else threshold)
    per_image, probs, labels = [], [], []
    for r in rows:
        s = scan_image(r["image"], net, card, settings, None, batch_size=batch_size, rule=rule, threshold=thr,
                       corroboration=corroboration)
        tiles, p = s.pop("_tiles"), s.pop("_probs")
        if r["truth"]:
            lab = chunk_truth(r["truth"], tiles)
            keep = lab >= 0
            probs.append(p[keep])
            labels.append(lab[keep].astype(float))
        per_image.append({"image": Path(r["image"]).name, "has_ice": r["has_ice"], "flagged": s["flagged"],
                          "paper_class": s["paper_class"], "n_positive": s["n_positive"],
                          "n_corroborated": s["n_corroborated"],
                          "n_corroborated_by_look": s["n_corroborated_by_look"], "n_edge_only": s["n_edge_only"],
                          "n_looks": len(s["looks"]),
                          "max_prob": s["max_prob"],
                          "evidence": s["evidence"], "hot_pixels": s["hot_pixels"], "line_defects": s["line_defects"]})
    res: dict[str, Any] = {
        "model": str(model), "rule": rule, "threshold": thr, "notice": simulated_notice(card),
        "corroboration": corroboration_settings(card, corroboration),
        "chunking": {"chunk": settings.chunk, "overlap": settings.overlap, "anomaly": settings.anomaly.enabled},
        "image_level": image_metrics(np.array([i["flagged"] for i in per_image]),
                                     np.array([i["evidence"] for i in per_image]),
                                     np.array([i["has_ice"] for i in per_image])),
        "images": per_image}
    if probs:
        pa, ya = np.concatenate(probs), np.concatenate(labels)
        res["chunk_level"] = chunk_metrics(pa, ya, thr)
        res["calibration"] = {"brier": res["chunk_level"]["brier"], "bins": reliability(pa, ya)}
    if out is not None:
        _write(res, Path(out), card)
    return res


def _write(res: dict[str, Any], out: Path, card: dict[str, Any]) -> None:
    from orbitml.io.atomic import atomic_path
    from orbitml.report.html import Report

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "metrics.json", overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(res, indent=2, default=str), encoding="utf-8")
    rep = Report("orbitml ice evaluate")
    figs = []
    if "calibration" in res:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        b = res["calibration"]["bins"]
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.plot([r["mean_prob"] for r in b], [r["ice_fraction"] for r in b], "o-")
        ax.set_xlabel("mean predicted ice probability")
        ax.set_ylabel("observed ice fraction")
        ax.set_title(f"reliability (Brier {res['calibration']['brier']:.3f})")
        figs.append(("Chunk-level reliability", fig))
    text = (f"Model {card.get('name')} ({card.get('architecture')}), rule {res['rule']}, threshold "
            f"{res['threshold']:g}. " + (res["notice"] or ""))
    tables = [("Image level", [res["image_level"]])]
    if "chunk_level" in res:
        tables.append(("Chunk level", [res["chunk_level"]]))
    tables.append(("Images", res["images"]))
    rep.add_section("Ice evaluation", text, figures=figs, tables=tables)
    rep.write(out / "evaluate.html")
