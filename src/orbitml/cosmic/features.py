"""Per-hit features of a cosmic-ray mask: one row per 8-connected component.

``hit_table(sci_e, clean_e, mask)`` works on frames in electrons.  The charge of a hit is the excess
``sci_e - clean_e`` over its pixels (the product's SCI minus CLEAN, times the gain).  Coordinates:
``x`` = column, ``y`` = row, pixel centres at integers; ``orientation_deg`` is the major axis measured
from +x towards +y, in [0, 180).

Columns:

==================  ==========================================================================
label               component number in the label image (1-based)
n_pixels            pixel count
energy_e, peak_e    summed and largest excess charge (e-)
x, y                flux-weighted centroid (weights: excess clipped at 0; plain mean if none)
mxx, myy, mxy       flux-weighted second moments about the centroid (px^2, pixel width included)
size_px             sqrt(mxx + myy)
elongation          sqrt(major / minor eigenvalue of the moment matrix)
length_px           extent of the pixels along the major axis (+1 px)
width_px            n_pixels / length_px
orientation_deg     major-axis angle
curvature           skeleton path length / end-to-end distance of the skeleton (1 = straight)
sharpness           peak excess / mean excess of its 8 neighbours above the local background
peak_frac           peak_e / energy_e
column_frac         fraction of the pixels in the most populated column
flat_top_frac       fraction of the other pixels within 0.2% of the brightest SCI value (saturation)
excess_cv           std / mean of the pixels' excess (small for the even charge of a hot column)
bbox_h, bbox_w      bounding-box size; fill = n_pixels / box area; touches_edge
==================  ==========================================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial.distance import pdist
from skimage.morphology import skeletonize

EIGHT = np.ones((3, 3), bool)
FEATURE_COLUMNS = ["label", "n_pixels", "energy_e", "peak_e", "x", "y", "mxx", "myy", "mxy", "size_px",
                   "elongation", "length_px", "width_px", "orientation_deg", "curvature", "sharpness",
                   "peak_frac", "column_frac", "flat_top_frac", "excess_cv", "bbox_h", "bbox_w", "fill",
                   "touches_edge"]


def label_hits(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask: (int32 label image, count)."""
    lab, n = ndimage.label(np.asarray(mask, bool), structure=EIGHT)
    return lab.astype(np.int32), int(n)


def replace_masked_median(image: np.ndarray, mask: np.ndarray, pad: int = 3) -> np.ndarray:
    """Copy of ``image`` with each masked component replaced by the median of the unmasked pixels
    within ``pad`` pixels of it (the local background)."""
    out = np.array(image, dtype=np.float32, copy=True)
    lab, n = label_hits(mask)
    if n == 0:
        return out
    m = np.asarray(mask, bool)
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        r0, r1 = max(sl[0].start - pad, 0), min(sl[0].stop + pad, m.shape[0])
        c0, c1 = max(sl[1].start - pad, 0), min(sl[1].stop + pad, m.shape[1])
        win = image[r0:r1, c0:c1]
        ring = win[~m[r0:r1, c0:c1] & np.isfinite(win)]
        value = float(np.median(ring)) if ring.size else float(np.nanmedian(image[~m])) if (~m).any() else 0.0
        sub = lab[r0:r1, c0:c1] == i
        out[r0:r1, c0:c1][sub] = value
    return out


def _curvature(comp: np.ndarray) -> float:
    """Skeleton path length over end-to-end distance (both + 1 px); 1.0 for a straight line or a dot."""
    if comp.sum() < 3:
        return 1.0
    sk = skeletonize(comp)
    if sk.sum() < 2:
        return 1.0
    p = sk.astype(np.int8)
    ortho = int((p[1:, :] & p[:-1, :]).sum() + (p[:, 1:] & p[:, :-1]).sum())
    diag = int((p[1:, 1:] & p[:-1, :-1]).sum() + (p[1:, :-1] & p[:-1, 1:]).sum())
    # a diagonal link that closes a corner of two orthogonal links is not extra length
    corners = int((p[1:, 1:] & p[:-1, :-1] & (p[1:, :-1] | p[:-1, 1:])).sum()
                  + (p[1:, :-1] & p[:-1, 1:] & (p[1:, 1:] | p[:-1, :-1])).sum())
    path = ortho + np.sqrt(2.0) * (diag - corners)
    yy, xx = np.nonzero(sk)
    pts = np.column_stack([yy, xx]).astype(float)
    nb = ndimage.convolve(p, EIGHT.astype(np.int8), mode="constant") - p
    ends = pts[(nb[yy, xx] == 1)]
    cand = ends if len(ends) >= 2 else pts
    if len(cand) > 300:
        cand = cand[np.linspace(0, len(cand) - 1, 300).astype(int)]
    e2e = float(pdist(cand).max()) if len(cand) >= 2 else 0.0
    return float((path + 1.0) / (e2e + 1.0))


def _one(lab_sub, i, sci_sub, excess_sub, bg, off, shape) -> dict:
    comp = lab_sub == i
    yy, xx = np.nonzero(comp)
    ex = excess_sub[yy, xx].astype(np.float64)
    n = yy.size
    w = np.clip(ex, 0.0, None)
    if w.sum() <= 0:
        w = np.ones(n)
    w = w / w.sum()
    gy, gx = yy + off[0], xx + off[1]
    cy, cx = float((w * gy).sum()), float((w * gx).sum())
    dy, dx = gy - cy, gx - cx
    myy = float((w * dy * dy).sum()) + 1.0 / 12.0
    mxx = float((w * dx * dx).sum()) + 1.0 / 12.0
    mxy = float((w * dx * dy).sum())
    tr, det = mxx + myy, mxx * myy - mxy * mxy
    disc = np.sqrt(max(tr * tr / 4.0 - det, 0.0))
    l1, l2 = tr / 2.0 + disc, max(tr / 2.0 - disc, 1e-6)
    theta = 0.5 * np.arctan2(2.0 * mxy, mxx - myy)
    # extent along the major axis, from the pixel set itself
    proj = dx * np.cos(theta) + dy * np.sin(theta)
    length = float(proj.max() - proj.min() + 1.0)
    pk = int(np.argmax(ex))
    py, px = yy[pk], xx[pk]
    r0, r1 = max(py - 1, 0), min(py + 2, sci_sub.shape[0])
    c0, c1 = max(px - 1, 0), min(px + 2, sci_sub.shape[1])
    nbr = sci_sub[r0:r1, c0:c1].astype(np.float64) - bg
    peak_sci = float(sci_sub[py, px]) - bg
    nbr_mean = (nbr.sum() - peak_sci) / max(nbr.size - 1, 1)
    sharp = peak_sci / max(nbr_mean, 1e-3 * abs(peak_sci) + 1e-6)
    vals = sci_sub[yy, xx].astype(np.float64)
    top = vals.max()
    flat = float((np.sum(vals >= top - 0.002 * abs(top)) - 1) / (n - 1)) if n > 1 else 0.0
    cols = np.bincount(xx)
    h, wdt = int(yy.max() - yy.min() + 1), int(xx.max() - xx.min() + 1)
    return {
        "label": i, "n_pixels": n, "energy_e": float(ex.sum()), "peak_e": float(ex.max()),
        "x": cx, "y": cy, "mxx": mxx, "myy": myy, "mxy": mxy, "size_px": float(np.sqrt(tr)),
        "elongation": float(np.sqrt(l1 / l2)), "length_px": length, "width_px": n / length,
        "orientation_deg": float(np.degrees(theta) % 180.0),
        "curvature": _curvature(comp[yy.min():yy.max() + 1, xx.min():xx.max() + 1]),
        "sharpness": float(min(sharp, 1e3)), "peak_frac": float(ex.max() / ex.sum()) if ex.sum() > 0 else 1.0,
        "column_frac": float(cols.max() / n), "flat_top_frac": flat,
        "excess_cv": float(ex.std() / ex.mean()) if n > 1 and ex.mean() > 0 else 0.0, "bbox_h": h, "bbox_w": wdt,
        "fill": n / (h * wdt),
        "touches_edge": bool(gy.min() == 0 or gx.min() == 0 or gy.max() == shape[0] - 1
                             or gx.max() == shape[1] - 1),
    }


def hit_table(sci_e: np.ndarray, clean_e: np.ndarray, mask: np.ndarray,
              labels: np.ndarray | None = None) -> pd.DataFrame:
    """Features of each 8-connected component of ``mask`` (see the module docstring for columns).

    ``labels`` may give a precomputed label image (then ``mask`` is ignored).
    """
    sci = np.asarray(sci_e, dtype=np.float64)
    clean = np.asarray(clean_e, dtype=np.float64)
    if sci.shape != clean.shape or sci.shape != np.shape(mask if labels is None else labels):
        raise ValueError(f"shapes differ: sci {sci.shape}, clean {clean.shape}, mask {np.shape(mask)}")
    lab = label_hits(mask)[0] if labels is None else np.asarray(labels, np.int32)
    excess = np.nan_to_num(sci - clean, nan=0.0, posinf=0.0, neginf=0.0)
    rows = []
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        r0, r1 = max(sl[0].start - 1, 0), min(sl[0].stop + 1, sci.shape[0])
        c0, c1 = max(sl[1].start - 1, 0), min(sl[1].stop + 1, sci.shape[1])
        lab_sub = lab[r0:r1, c0:c1]
        bgv = clean[r0:r1, c0:c1][lab_sub == i]
        bgv = bgv[np.isfinite(bgv)]
        bg = float(np.median(bgv)) if bgv.size else 0.0
        rows.append(_one(lab_sub, i, np.nan_to_num(sci[r0:r1, c0:c1]), excess[r0:r1, c0:c1], bg,
                         (r0, c0), sci.shape))
    df = pd.DataFrame(rows, columns=FEATURE_COLUMNS)
    return df.astype({"label": np.int32, "n_pixels": np.int64, "bbox_h": np.int64, "bbox_w": np.int64,
                      "touches_edge": bool})
