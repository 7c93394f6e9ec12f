"""Cosmic rays in repeated exposures of the same field: a robust comparison across aligned frames.

A cosmic ray hits one exposure only, while stars, hot pixels and the sky repeat.  Each frame (in
electrons) is scaled to the stack's common level (a robust ratio, so a change in exposure time or sky
does not flag everything), compared with the per-pixel median of the stack, and a pixel is flagged
in frame *i* when it exceeds the reference by ``k`` sigma **in that frame only**.  Sigma is the larger
of the Poisson + read-noise model of the difference from the reference and 1.4826 x the median absolute deviation across
frames, so a pixel that varies anyway (a twinkling star core) is not flagged.  Flagged pixels are
grown into their neighbours above ``k * grow_frac`` sigma, as L.A.Cosmic does.

With two frames the median is the mean, which a hit drags up; the reference is then the pixel-wise
minimum of the pair instead (hits never coincide, so it is hit-free).  Frames must be aligned
(same pointing, same shape); register them first if they are not.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from orbitml.cosmic.detect import Detection, clean_frame
from orbitml.cosmic.ingest import Frame
from orbitml.errors import OrbitmlInputError


def stack_masks(frames_e: np.ndarray, read_noise_e: float | np.ndarray, k: float = 5.0,
                grow_frac: float = 0.5, bad: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Masks for a ``(n, y, x)`` stack in electrons; returns ``(masks (n, y, x) bool, reference (y, x))``."""
    st = np.asarray(frames_e, dtype=np.float32)
    if st.ndim != 3 or st.shape[0] < 2:
        raise OrbitmlInputError(f"stack comparison needs at least 2 aligned frames, got shape {st.shape}")
    n = st.shape[0]
    rn = np.broadcast_to(np.asarray(read_noise_e, np.float32).reshape(-1, 1, 1), (n, 1, 1))
    # robust per-frame scale to the stack's level (sky changes, exposure-time differences)
    med_all = np.median(st, axis=0)
    scale = np.ones(n, np.float32)
    for i in range(n):
        good = (med_all > np.percentile(med_all, 50)) & np.isfinite(st[i])
        if good.sum() > 100 and np.median(st[i][good]) > 0:
            scale[i] = np.median(st[i][good]) / np.median(med_all[good])
    scaled = st / scale[:, None, None]
    ref = np.min(scaled, axis=0) if n == 2 else np.median(scaled, axis=0)
    mad = 1.4826 * np.median(np.abs(scaled - ref[None]), axis=0) if n >= 3 else np.zeros_like(ref)
    model = np.sqrt(np.maximum(ref[None], 0) / scale[:, None, None] + (rn / scale[:, None, None]) ** 2)
    # the reference is noisy too: var(x - min of 2) ~ 2 var(x); var(x - median of n) ~ (1 + pi / 2n) var(x)
    model = model * np.float32(np.sqrt(2.0) if n == 2 else np.sqrt(1.0 + np.pi / (2 * n)))
    sigma = np.maximum(model, mad[None])
    excess = (scaled - ref[None]) / sigma
    core = excess > k
    # "one frame only": a pixel high in two or more frames is real variability, not a hit
    core &= (core.sum(axis=0) == 1)[None]
    masks = np.empty_like(core)
    eight = np.ones((3, 3), bool)
    for i in range(n):
        near = ndi.binary_dilation(core[i], structure=eight)
        masks[i] = core[i] | (near & (excess[i] > k * grow_frac))
    if bad is not None:
        masks &= ~np.asarray(bad, bool)
    return masks, ref


def detect_stack(frames: list[Frame], k: float = 5.0, grow_frac: float = 0.5) -> list[Detection]:
    """One :class:`Detection` per frame of an aligned stack of :class:`Frame` (cleaned in ADU)."""
    if len(frames) < 2:
        raise OrbitmlInputError("--method stack needs at least 2 aligned frames of the same field")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise OrbitmlInputError(f"stack frames differ in shape: {sorted(shapes)}; they must be aligned")
    st = np.stack([f.data_e for f in frames])
    bad = np.stack([f.bad for f in frames])
    masks, _ = stack_masks(st, np.array([f.read_noise for f in frames]), k=k, grow_frac=grow_frac, bad=bad)
    return [Detection(mask=m, clean=clean_frame(f.data, m), method="stack",
                      params={"k": k, "nstack": len(frames)}) for f, m in zip(frames, masks, strict=True)]
