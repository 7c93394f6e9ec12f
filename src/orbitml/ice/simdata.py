"""``orbitml ice simulate``: simulated HiRISE-like images, chunk labels, truth masks and train manifests.

Training images look like a curated archive: ice patches in some images, dust, and only a few hot
pixels.  Held-out images carry the distractors that fooled the paper's classifier: many hot
pixels and line defects, and dust patches centred on the chunk boundaries of the paper's
non-overlapping grid (cut in half there).  Every image is a GeoTIFF in a Mars equirectangular CRS
with a ``<stem>_truth.tif`` patch-id mask beside it; ``images.csv`` lists the images with their
image-level truth and split; ``labels.csv`` (half-chunk-overlap grid) and ``labels_paper.csv`` (the
paper's grid, no overlap) give unambiguous chunk labels of the training images (chunks with a
patch cut by their edge are left out); ``train.yaml`` and ``train_paper.yaml`` train the improved
and the paper's pipeline on the same labelled chunks (``labels.csv``) with the same network (global
max pooling, which learns a few-pixel patch far faster than the paper's global average).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.ice.prep import ChunkSettings
from orbitml.simulate.hirise import HiriseTruth, chunk_label, simulate_hirise, write_hirise

__all__ = ["simulate_dataset", "SIM_DESCRIPTION"]

SIM_DESCRIPTION = "simulated HiRISE-like tiles (orbitml.simulate.hirise)"


def _write_truth(path: Path, truth: HiriseTruth) -> None:
    write_hirise(path, truth.patch_id.astype(np.uint16))


def _labels(truth: HiriseTruth, image: str, shape, chunk: int, overlap: int) -> list[dict[str, Any]]:
    from orbitml.tiling.chunker import chunk_offsets

    h, w = shape
    step = chunk - overlap
    rows = []
    for r in chunk_offsets(h, chunk, step):
        for c in chunk_offsets(w, chunk, step):
            if truth.nodata[r:r + chunk, c:c + chunk].any():
                continue  # the paper's no-data policy: such chunks are never used
            lab = chunk_label(truth, r, c, chunk, chunk)
            if lab is not None:
                rows.append({"image": image, "row": r, "col": c, "size": chunk, "label": lab})
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str] | None = None) -> None:
    from orbitml.io.atomic import atomic_path

    with atomic_path(path, overwrite=True) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        wr = csv.DictWriter(fh, fieldnames=fields or list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)


def simulate_dataset(out: str | os.PathLike, n_train: int = 12, n_heldout: int = 12, shape=(512, 512),
                     chunk: int = 128, input_size: int = 64, seed: int = 0, epochs: int = 8,
                     model: dict[str, Any] | None = None, heldout_ice_fraction: float = 0.25,
                     heldout_hot: int = 40, heldout_lines: int = 6, ice_radius: tuple[float, float] | None = None
                     ) -> dict[str, Any]:
    """Write the data set into ``out``; returns paths and counts.

    ``ice_radius`` (px): default scaled to the chunk, ``(max(1.5, chunk/32), max(2.5, chunk/14))``, so
    patches stay well under a quarter chunk; dust patches are twice as large.
    """
    from orbitml.ice.train import TrainManifest
    from orbitml.io.manifest import write_manifest
    from orbitml.io.provenance import write_run_info

    out = Path(out)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "heldout").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, labels, labels_paper = [], [], []
    h, w = shape
    ir = ice_radius or (max(1.5, chunk / 32), max(2.5, chunk / 14))
    sizes = {"ice_radius": ir, "dust_radius": (2 * ir[0], 2 * ir[1])}
    for split, n in (("train", n_train), ("heldout", n_heldout)):
        for i in range(n):
            s = int(rng.integers(2**31))
            if split == "train":
                n_ice = int(rng.choice([0, 1, 2, 3, 4]))
                kw = dict(n_ice=n_ice, n_dust=int(rng.integers(1, 5)), n_hot=int(rng.integers(0, 3)), n_lines=0)
            else:
                n_ice = int(rng.integers(1, 3)) if rng.random() < heldout_ice_fraction else 0
                cols = [k * chunk for k in range(1, w // chunk)]
                dust_at = [(int(rng.uniform(0.25, 0.75) * h), int(rng.choice(cols))) for _ in range(2)]
                kw = dict(n_ice=n_ice, n_dust=3, n_hot=int(rng.integers(heldout_hot // 2, heldout_hot + 1)),
                          n_lines=int(rng.integers(heldout_lines // 2, heldout_lines + 1)), dust_at=dust_at)
            img, truth = simulate_hirise(shape, seed=s, **sizes, **kw)
            stem = f"SIM_{split}_{i:03d}"
            path = out / split / f"{stem}.tif"
            write_hirise(path, img, tags={"ORBITML_SIMULATED": "true", "ORBITML_SIMULATOR": SIM_DESCRIPTION})
            _write_truth(out / split / f"{stem}_truth.tif", truth)
            images.append({"image": f"{split}/{stem}.tif", "split": split, "has_ice": int(truth.has_ice),
                           "n_patches": len(truth.patches), "truth": f"{split}/{stem}_truth.tif",
                           "hot_pixels": int(truth.hot.sum()), "line_pixels": int(truth.lines.sum()), "seed": s})
            if split == "train":
                labels += _labels(truth, f"{split}/{stem}.tif", shape, chunk, chunk // 2)
                labels_paper += _labels(truth, f"{split}/{stem}.tif", shape, chunk, 0)
    _write_csv(out / "images.csv", images)
    lf = ["image", "row", "col", "size", "label"]
    _write_csv(out / "labels.csv", labels, lf)
    _write_csv(out / "labels_paper.csv", labels_paper, lf)
    mdl = {"pool": "max", **(model or {"stem": 16, "blocks": [32, 64], "head": 64})}
    common = dict(chunk=chunk, input_size=input_size, epochs=epochs, batch_size=25, lr=3e-3, seed=seed, simulated=True,
                  simulated_description=SIM_DESCRIPTION, model=mdl, val_fraction=0.2, threads=1)
    improved = TrainManifest(labels="labels.csv", out="models/ice_improved", **common)
    # the paper's way: same network, same labelled chunks; no overlap, no defect handling, no augmentation
    paper = TrainManifest(labels="labels.csv", out="models/ice_paper", overlap=0,
                          anomaly={"enabled": False}, augment={"defects": False, "jitter": False}, **common)
    write_manifest(improved, out / "train.yaml")
    write_manifest(paper, out / "train_paper.yaml")
    ChunkSettings(chunk=chunk, input_size=input_size)  # validates the sizes
    write_run_info(out, "orbitml ice simulate", {"n_train": n_train, "n_heldout": n_heldout, "shape": list(shape),
                                                 "chunk": chunk, "input_size": input_size}, seed=seed)
    return {"out": str(out), "images": len(images), "labels": len(labels), "labels_paper": len(labels_paper),
            "manifest": str(out / "train.yaml"), "manifest_paper": str(out / "train_paper.yaml"),
            "positives": int(sum(r["label"] for r in labels))}
