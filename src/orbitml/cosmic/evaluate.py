"""Scoring cosmic-ray detectors against exact simulated masks.

Pixel level
    A score map (U-Net probability) gives a ROC curve over pixels.  :func:`detection_at_fpr` reports
    the detection rate (true-positive rate) at fixed false-positive rates: the threshold is the
    smallest value whose false-positive fraction over the negative pixels does not exceed the target
    (ties are resolved conservatively).  A detector that only gives masks (L.A.Cosmic at one setting)
    is traced by sweeping its main parameter (``sigclip``) and :func:`tpr_at_fpr_from_points`
    interpolates its detection rate at the target on the upper envelope of those operating points.

Hit level (8-connected regions)
    A true hit is *found* when at least ``min_frac`` (default 50%) of its mask pixels are flagged;
    recall = found / true hits that have any mask pixel.  A predicted region is *true* when at least
    one of its pixels lies on a true-hit pixel or touches one (the truth mask grown by one pixel,
    which tolerates the faint diffusion halo); precision = true regions / predicted regions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

FPRS = (1e-4, 1e-3, 5e-3)
EIGHT = np.ones((3, 3), bool)


def _split(score, truth, valid):
    score = np.asarray(score, dtype=np.float64).ravel()
    truth = np.asarray(truth, bool).ravel()
    if valid is not None:
        v = np.asarray(valid, bool).ravel()
        score, truth = score[v], truth[v]
    return score[truth], score[~truth]


def detection_at_fpr(score, truth, fprs: Sequence[float] = FPRS, valid=None) -> dict[float, dict[str, float]]:
    """``{fpr: {"tpr": ..., "threshold": ..., "fpr_actual": ...}}`` for a score map and a boolean truth."""
    pos, neg = _split(score, truth, valid)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("need both positive and negative pixels to score a detector")
    neg_desc = np.sort(neg)[::-1]
    out = {}
    for f in fprs:
        k = int(np.floor(f * neg.size))  # at most k negatives may lie above the threshold
        thr = neg_desc[k] if k < neg.size else -np.inf
        out[float(f)] = {"tpr": float(np.mean(pos > thr)), "threshold": float(thr),
                         "fpr_actual": float(np.mean(neg > thr))}
    return out


def roc_points(score, truth, valid=None, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) on ``n`` log-spaced false-positive rates from 1e-5 to 1 (for plotting)."""
    fprs = np.logspace(-5, 0, n)
    res = detection_at_fpr(score, truth, fprs, valid)
    return fprs, np.array([res[float(f)]["tpr"] for f in fprs])


def mask_rates(mask, truth, valid=None) -> tuple[float, float]:
    """(fpr, tpr) of one boolean mask."""
    pos, neg = _split(np.asarray(mask, float), truth, valid)
    return float(np.mean(neg > 0.5)), float(np.mean(pos > 0.5))


def tpr_at_fpr_from_points(points: Sequence[tuple[float, float]], fpr: float) -> float:
    """Detection rate at ``fpr`` from (fpr, tpr) operating points: linear interpolation on their upper
    envelope, anchored at (0, 0); beyond the largest measured fpr the best measured tpr is returned."""
    pts = sorted([(0.0, 0.0), *[(float(a), float(b)) for a, b in points]])
    xs, ys = [], []
    best = 0.0
    for a, b in pts:
        best = max(best, b)
        xs.append(a)
        ys.append(best)
    return float(np.interp(fpr, xs, ys))


def hit_metrics(pred_mask, hit_id, truth_mask=None, min_frac: float = 0.5) -> dict[str, float]:
    """Per-hit recall and per-region precision (definitions in the module docstring).

    3-D inputs are a stack of independent patches (hit ids and regions counted per patch, summed).
    """
    pred = np.asarray(pred_mask, bool)
    hit_id = np.asarray(hit_id)
    if pred.ndim == 3:
        parts = [hit_metrics(p, h, None if truth_mask is None else t, min_frac)
                 for p, h, t in zip(pred, hit_id, pred if truth_mask is None else truth_mask, strict=True)]
        tot = {k: sum(d[k] for d in parts) for k in ("n_true_hits", "n_found", "n_regions", "n_true_regions",
                                                       "n_false_regions")}
        tot["recall"] = tot["n_found"] / tot["n_true_hits"] if tot["n_true_hits"] else float("nan")
        tot["precision"] = tot["n_true_regions"] / tot["n_regions"] if tot["n_regions"] else float("nan")
        return tot
    truth = hit_id > 0 if truth_mask is None else np.asarray(truth_mask, bool)
    ids = hit_id[truth]
    n_hit_px = np.bincount(ids, minlength=int(hit_id.max()) + 1)
    n_found_px = np.bincount(hit_id[truth & pred], minlength=n_hit_px.size)
    present = np.flatnonzero(n_hit_px > 0)
    present = present[present > 0]
    found = np.sum(n_found_px[present] >= min_frac * n_hit_px[present])
    lab, n_reg = ndi.label(pred, structure=EIGHT)
    grown = ndi.binary_dilation(truth, structure=EIGHT)
    true_regions = np.unique(lab[grown & (lab > 0)]).size
    return {"n_true_hits": int(present.size), "n_found": int(found),
            "recall": float(found / present.size) if present.size else float("nan"),
            "n_regions": int(n_reg), "n_true_regions": int(true_regions),
            "n_false_regions": int(n_reg - true_regions),
            "precision": float(true_regions / n_reg) if n_reg else float("nan")}


def false_regions_outside(mask, boxes: Sequence[tuple[slice, slice]]) -> tuple[int, list[bool]]:
    """For a real frame with known hit boxes: (regions not touching any box, whether each box was hit)."""
    lab, n = ndi.label(np.asarray(mask, bool), structure=EIGHT)
    inside = np.zeros(lab.shape, bool)
    hit = []
    for rs, cs in boxes:
        inside[rs, cs] = True
        hit.append(bool(np.any(lab[rs, cs] > 0)))
    touching = np.unique(lab[inside & (lab > 0)])
    return int(n - touching.size), hit
