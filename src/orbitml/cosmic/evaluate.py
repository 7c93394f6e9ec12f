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


# ------------------------------------------------------------------- bounding-box annotations (Pascal VOC)
#
# Rule (stated in every output): annotated boxes are read from Pascal VOC XML (1-based, inclusive pixel
# coordinates, as VOC writes them).  Predicted boxes are the bounding boxes of the detector's hit regions:
# 8-connected regions of the mask after bridging 1-pixel gaps (so a track broken by one pixel is one hit).
# A predicted box matches an annotated one when their intersection over union, on pixel-inclusive areas, is
# at least ``iou`` (default 0.3: hits are a few pixels across, where a one-pixel shift already costs ~0.3);
# matching is one-to-one, greedy by decreasing IoU.  Box recall = matched annotated boxes / annotated boxes;
# box precision = matched predicted boxes / predicted boxes.

BOX_RULE = ("IoU >= {iou:g} between an annotated box (Pascal VOC, 1-based inclusive) and the bounding box "
            "of a detected region (8-connected, 1-px gaps bridged); one-to-one, greedy by IoU")


def read_voc(path) -> dict:
    """``{"filename", "width", "height", "boxes": [(x0, y0, x1, y1, label), ...]}`` from a VOC XML file,
    boxes 0-based inclusive.  A malformed file is an :class:`OrbitmlInputError` naming it."""
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from orbitml.errors import OrbitmlInputError

    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise OrbitmlInputError("no such file", path) from None
    except (ET.ParseError, OSError) as exc:
        raise OrbitmlInputError(f"not a readable Pascal VOC XML file: {exc}", path) from None
    if root.tag != "annotation":
        raise OrbitmlInputError(f"not a Pascal VOC annotation (root element <{root.tag}>, expected "
                                "<annotation>)", path)

    def num(el, tag):
        t = el.findtext(tag)
        try:
            return float(t)
        except (TypeError, ValueError):
            raise OrbitmlInputError(f"<{tag}> is {t!r}, not a number", path) from None

    size = root.find("size")
    width = int(num(size, "width")) if size is not None and size.findtext("width") else None
    height = int(num(size, "height")) if size is not None and size.findtext("height") else None
    boxes = []
    for i, obj in enumerate(root.iter("object")):
        bb = obj.find("bndbox")
        if bb is None:
            raise OrbitmlInputError(f"object {i + 1} has no <bndbox>", path)
        x0, y0, x1, y1 = (num(bb, t) for t in ("xmin", "ymin", "xmax", "ymax"))
        if x1 < x0 or y1 < y0:
            raise OrbitmlInputError(f"object {i + 1}: xmax/ymax below xmin/ymin", path)
        boxes.append((int(round(x0)) - 1, int(round(y0)) - 1, int(round(x1)) - 1, int(round(y1)) - 1,
                      obj.findtext("name") or ""))
    return {"filename": root.findtext("filename") or "", "width": width, "height": height, "boxes": boxes}


def mask_boxes(mask) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(x0, y0, x1, y1)`` (0-based inclusive) of the mask's hit regions (1-px gaps bridged)."""
    mask = np.asarray(mask, bool)
    lab, _ = ndi.label(ndi.binary_dilation(mask, structure=EIGHT), structure=EIGHT)
    lab = np.where(mask, lab, 0)
    out = []
    for sl in ndi.find_objects(lab):
        if sl is not None:
            out.append((sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1))
    return out


def box_iou(a, b) -> float:
    """IoU of two 0-based inclusive boxes ``(x0, y0, x1, y1, ...)`` on pixel-inclusive areas."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return float(inter / area)


def box_scores(truth, pred, iou: float = 0.3) -> dict[str, float]:
    """Box recall and precision of ``pred`` boxes against ``truth`` boxes at the IoU rule (module text)."""
    pairs = sorted(((box_iou(t, p), i, j) for i, t in enumerate(truth) for j, p in enumerate(pred)),
                   reverse=True)
    used_t, used_p = set(), set()
    for v, i, j in pairs:
        if v < iou or v <= 0:
            break
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
    n_t, n_p, m = len(truth), len(pred), len(used_t)
    return {"n_annotated": n_t, "n_detected": n_p, "n_matched": m,
            "recall": m / n_t if n_t else float("nan"), "precision": m / n_p if n_p else float("nan")}


def find_annotations(inputs) -> list:
    """VOC XML files named directly or found (not recursively) in folders."""
    from pathlib import Path

    from orbitml.errors import OrbitmlInputError

    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*.xml"))
            if not found:
                raise OrbitmlInputError("no *.xml annotation files in this folder", p)
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise OrbitmlInputError("no such file or folder", p)
    return out


def evaluate_boxes(products, annotations, iou: float = 0.3, on_error=None) -> tuple[list[dict], dict, list[str]]:
    """Score detection products against VOC annotations, per frame and in total.

    A product pairs with the annotation whose ``<filename>`` stem (or XML file stem) is the product's frame
    name.  Returns ``(rows, total, notes)``: one row per scored frame, the pooled totals, and notes on
    products without annotation and annotations without product.
    """
    from pathlib import Path

    from orbitml.cosmic.products import read_product
    from orbitml.errors import OrbitmlInputError

    def stem(name: str) -> str:
        n = Path(name).name
        for suf in (".fits.gz", ".fits", ".fit", ".fts", ".png", ".jpg", ".jpeg", ".img", ".lbl", ".xml"):
            if n.lower().endswith(suf):
                return n[: -len(suf)]
        return Path(n).stem

    ann = {}
    for a in annotations:
        voc = read_voc(a)
        key = stem(voc["filename"]) if voc["filename"] else stem(Path(a).name)
        ann[key] = (Path(a), voc)
    rows, notes, seen = [], [], set()
    for p in products:
        try:
            prod = read_product(p)
        except OrbitmlInputError as exc:
            if on_error:
                on_error(exc)
            notes.append(f"skipped {p}: {exc.reason}")
            continue
        if prod.frame not in ann:
            notes.append(f"{prod.frame}: no annotation (looked for <filename> {prod.frame}.*)")
            continue
        seen.add(prod.frame)
        apath, voc = ann[prod.frame]
        ny, nx = prod.mask.shape
        if (voc["width"], voc["height"]) not in ((nx, ny), (None, None)):
            notes.append(f"{prod.frame}: annotation {apath.name} is for a {voc['width']} x {voc['height']} image, "
                         f"the product is {nx} x {ny}: not scored")
            continue
        truth = [b[:4] for b in voc["boxes"]]
        s = box_scores(truth, mask_boxes(prod.mask), iou)
        rows.append({"frame": prod.frame, "annotation": apath.name, **s})
    for key, (apath, _) in sorted(ann.items()):
        if key not in seen and not any(n.startswith(f"{key}:") for n in notes):
            notes.append(f"annotation {apath.name}: no product for frame {key}")
    tot = {k: sum(r[k] for r in rows) for k in ("n_annotated", "n_detected", "n_matched")}
    tot["recall"] = tot["n_matched"] / tot["n_annotated"] if tot["n_annotated"] else float("nan")
    tot["precision"] = tot["n_matched"] / tot["n_detected"] if tot["n_detected"] else float("nan")
    tot["frames"] = len(rows)
    tot["rule"] = BOX_RULE.format(iou=iou)
    return rows, tot, notes
