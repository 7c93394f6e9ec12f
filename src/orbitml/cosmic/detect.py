"""Cosmic-ray detection in one frame: L.A.Cosmic (astroscrappy) and the learned U-Net; cleaning.

Both detectors take a :class:`~orbitml.cosmic.ingest.Frame` (data in ADU plus gain, read noise and
saturation) and return a :class:`Detection`: a boolean mask, the U-Net's probability map when there
is one, and the cleaned frame (hit pixels replaced by the median of their unflagged neighbours).
The stack comparison for repeated exposures lives in :mod:`orbitml.cosmic.stack`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from orbitml.cosmic.ingest import Frame
from orbitml.errors import OrbitmlInputError

EIGHT = np.ones((3, 3), bool)


@dataclass
class Detection:
    mask: np.ndarray  # bool, True = cosmic-ray pixel
    clean: np.ndarray  # float32, same units as the input frame
    method: str
    prob: np.ndarray | None = None  # float32 in [0, 1] (unet only)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_regions(self) -> int:
        return int(ndi.label(self.mask, structure=EIGHT)[1])


def _interp_matrix(n: int, box: int, nblocks: int) -> np.ndarray:
    """(n, nblocks) weights of linear interpolation between block centres, extrapolated beyond the ends."""
    w = np.zeros((n, nblocks), np.float32)
    if nblocks == 1:
        w[:, 0] = 1.0
        return w
    pos = (np.arange(n) + 0.5) / box - 0.5
    lo = np.clip(np.floor(pos).astype(int), 0, nblocks - 2)
    frac = pos - lo
    w[np.arange(n), lo] = 1.0 - frac
    w[np.arange(n), lo + 1] += frac
    return w


def block_background(data: np.ndarray, box: int = 32, bad: np.ndarray | None = None) -> np.ndarray:
    """Smooth sky: medians of ``box`` x ``box`` blocks (every other pixel of each block), a 3x3 median
    over blocks, bilinear interpolation between block centres back to full resolution.

    Costs a few ms per megapixel (a full 31x31 median filter costs seconds) and ignores stars and
    hits that cover less than half a block.  Beyond the outermost block centres it is extrapolated.
    """
    data = np.asarray(data, dtype=np.float32)
    ny, nx = data.shape
    box = int(max(4, min(box, ny, nx)))
    box -= box % 2
    by, bx = -(-ny // box), -(-nx // box)
    work = data if bad is None or not bad.any() else np.where(bad, np.nan, data)
    padded = np.pad(work, ((0, by * box - ny), (0, bx * box - nx)), mode="symmetric")[::2, ::2]
    h = box // 2
    blocks = padded.reshape(by, h, bx, h).transpose(0, 2, 1, 3).reshape(by, bx, h * h)
    med = np.nanmedian(blocks, axis=-1) if bad is not None and bad.any() else np.median(blocks, axis=-1)
    if np.isnan(med).any():
        med = np.where(np.isnan(med), np.nanmedian(med), med)
    if by >= 3 and bx >= 3:
        med = ndi.median_filter(med, size=3, mode="nearest")
    wy, wx = _interp_matrix(ny, box, by), _interp_matrix(nx, box, bx)
    return (wy @ med.astype(np.float32) @ wx.T).astype(np.float32)


def block_noise(data: np.ndarray, box: int = 32, bad: np.ndarray | None = None) -> np.ndarray:
    """Pixel-noise sigma map: per ``box`` x ``box`` block, 1.4826 MAD of horizontal neighbour differences
    over sqrt(2) (insensitive to smooth structure and to the few pixels a hit covers), 3x3 median over
    blocks, bilinear interpolation back to full resolution; floored at 1% of its median and at 1e-3."""
    data = np.asarray(data, dtype=np.float32)
    ny, nx = data.shape
    box = int(max(4, min(box, ny, nx)))
    box -= box % 2
    by, bx = -(-ny // box), -(-nx // box)
    d = np.abs(np.diff(np.pad(data, ((0, by * box - ny), (0, bx * box - nx + 1)), mode="symmetric"), axis=1))
    if bad is not None and bad.any():
        b = np.pad(bad, ((0, by * box - ny), (0, bx * box - nx + 1)), mode="symmetric")
        d = np.where(b[:, 1:] | b[:, :-1], np.nan, d)
    blocks = d.reshape(by, box, bx, box).transpose(0, 2, 1, 3).reshape(by, bx, box * box)
    sig = np.nanmedian(blocks, axis=-1) * np.float32(1.0 / (0.6745 * np.sqrt(2.0)))
    # |a - b| of two N(0, s^2) pixels has median 0.6745 sqrt(2) s
    if np.isnan(sig).all():
        sig = np.ones_like(sig)
    sig = np.where(np.isnan(sig), np.nanmedian(sig), sig)
    if by >= 3 and bx >= 3:
        sig = ndi.median_filter(sig, size=3, mode="nearest")
    wy, wx = _interp_matrix(ny, box, by), _interp_matrix(nx, box, bx)
    out = wy @ sig.astype(np.float32) @ wx.T
    return np.maximum(out, max(0.01 * float(np.median(sig)), 1e-3)).astype(np.float32)


def clean_frame(data: np.ndarray, mask: np.ndarray, size: int = 5, max_size: int = 41) -> np.ndarray:
    """Replace masked pixels by the median of the unmasked pixels in a ``size`` x ``size`` window.

    Where a window holds no unmasked pixel (inside a long track) it grows by 2 until one does (up to
    ``max_size``; beyond that the frame median is used).  Unmasked pixels are returned unchanged.
    """
    data = np.asarray(data, dtype=np.float32)
    mask = np.asarray(mask, bool)
    out = data.copy()
    if not mask.any():
        return out
    todo = np.argwhere(mask)
    valid = np.where(mask, np.nan, data)
    s = size
    while todo.size and s <= max_size:
        r = s // 2
        padded = np.pad(valid, r, mode="constant", constant_values=np.nan)
        win = np.lib.stride_tricks.sliding_window_view(padded, (s, s))
        vals = win[todo[:, 0], todo[:, 1]].reshape(len(todo), -1)
        ok = ~np.all(np.isnan(vals), axis=1)
        if ok.any():
            med = np.nanmedian(vals[ok], axis=1)
            out[todo[ok, 0], todo[ok, 1]] = med
        todo = todo[~ok]
        s += 2
    if todo.size:
        out[todo[:, 0], todo[:, 1]] = np.nanmedian(valid) if np.isfinite(valid).any() else 0.0
    return out


def _background(frame: Frame, background) -> np.ndarray | None:
    if isinstance(background, np.ndarray):
        if background.shape != frame.shape:
            raise OrbitmlInputError(f"background shape {background.shape} differs from the frame {frame.shape}",
                                    frame.path)
        return background.astype(np.float32)
    if background in ("auto", None):
        return frame.background
    if background == "provided":
        if frame.background is None:
            raise OrbitmlInputError("no background (SKYFIT) extension in this file", frame.path)
        return frame.background
    if background == "median":
        return block_background(frame.data, bad=frame.bad)
    if background == "none":
        return None
    raise OrbitmlInputError(f"unknown background {background!r}; use auto, provided, median or none")


LACOSMIC_MIN_SIDE = 8  # its 7 x 7 median filters; astroscrappy writes out of bounds on frames of < 4 rows


def detect_lacosmic(frame: Frame, *, sigclip: float = 4.5, sigfrac: float = 0.3, objlim: float = 5.0,
                    niter: int = 4, background="auto", use_variance: bool = False, clean: bool = True,
                    **extra) -> Detection:
    """L.A.Cosmic (van Dokkum 2001) through astroscrappy with the frame's detector facts.

    astroscrappy works in electrons internally: it multiplies data (ADU) by ``gain``, compares with
    ``satlevel`` in electrons (so the saturation level is passed as ``saturation_adu * gain``) and takes
    ``readnoise`` in electrons.  ``background``: ``"auto"`` (the file's sky model when it has one, e.g.
    GMOS SKYFIT, else none, as plain L.A.Cosmic), ``"provided"``, ``"median"`` (a block-median sky, which
    protects structured backgrounds), ``"none"`` or an array in ADU.
    Bad pixels (non-finite, saturated, missing) are passed as ``inmask`` and never flagged.
    """
    import astroscrappy

    if min(frame.data.shape) < LACOSMIC_MIN_SIDE:  # astroscrappy corrupts memory on smaller frames
        raise OrbitmlInputError(f"frame is {frame.data.shape[0]} x {frame.data.shape[1]} pixels; L.A.Cosmic needs "
                                f"at least {LACOSMIC_MIN_SIDE} x {LACOSMIC_MIN_SIDE}", frame.path)
    bkg = _background(frame, background)
    sat_e = float(frame.saturation_adu) * frame.gain if np.isfinite(frame.saturation_adu) else 1e30
    var = frame.variance if use_variance and frame.variance is not None else None
    data = np.ascontiguousarray(frame.data, dtype=np.float32)
    mask, _ = astroscrappy.detect_cosmics(
        data, inmask=frame.bad if frame.bad.any() else None, inbkg=bkg, invar=var, sigclip=sigclip,
        sigfrac=sigfrac, objlim=objlim, gain=frame.gain, readnoise=frame.read_noise, satlevel=sat_e,
        niter=niter, **extra)
    mask = np.asarray(mask, bool) & ~frame.bad
    params = {"sigclip": sigclip, "sigfrac": sigfrac, "objlim": objlim, "niter": niter,
              "background": background if isinstance(background, str) else "array",
              "gain": frame.gain, "read_noise": frame.read_noise, "satlevel_e": sat_e}
    out = clean_frame(data, mask) if clean else data
    return Detection(mask=mask, clean=out, method="lacosmic", params=params)


def normalise(data_adu: np.ndarray, gain: float, read_noise: float, background: np.ndarray | None = None,
              softening: float = 3.0, bad: np.ndarray | None = None) -> np.ndarray:
    """U-Net input: signal-to-noise above the sky, compressed by asinh so bright stars stay bounded.

    ``z = (e - sky_e) / sqrt(max(sky_e, 0) + rn^2)``, input ``asinh(z / softening)``; bad pixels -> 0.
    The same function is used in training and in detection (its name and ``softening`` go in the card).
    """
    e = np.asarray(data_adu, dtype=np.float32) * np.float32(gain)
    sky = (block_background(data_adu, bad=bad) if background is None else np.asarray(background, np.float32))
    sky_e = sky * np.float32(gain)
    noise = np.sqrt(np.maximum(sky_e, 0) + np.float32(read_noise) ** 2)
    x = np.arcsinh((e - sky_e) / noise / np.float32(softening)).astype(np.float32)
    if bad is not None and bad.any():
        x[bad] = 0.0
    return x


NORMALISATIONS = {
    "snr_asinh": "asinh((e - sky_e) / sqrt(max(sky_e, 0) + read_noise^2) / softening), e = ADU * gain",
    "noise_asinh": "asinh((DN - sky) / noise / softening), noise = block_noise(DN): measured from the frame, "
                   "no gain needed",
}


def normalise_noise(data: np.ndarray, background: np.ndarray | None = None, noise: np.ndarray | None = None,
                    softening: float = 3.0, bad: np.ndarray | None = None) -> np.ndarray:
    """U-Net input for frames whose gain is unknown or meaningless (8-bit line-scan EDRs, browse images):
    signal above the sky over the pixel noise *measured* on the frame (:func:`block_noise`), asinh-compressed."""
    d = np.asarray(data, dtype=np.float32)
    sky = block_background(d, bad=bad) if background is None else np.asarray(background, np.float32)
    sig = block_noise(d, bad=bad) if noise is None else np.asarray(noise, np.float32)
    x = np.arcsinh((d - sky) / sig / np.float32(softening)).astype(np.float32)
    if bad is not None and bad.any():
        x[bad] = 0.0
    return x


def detect_unet(frame: Frame, model, card: dict, *, threshold: float | None = None, background="auto",
                clean: bool = True, engine: str = "strips") -> Detection:
    """Probability map from a trained :class:`~orbitml.nn.cosmic_unet.CosmicUNet`; mask = prob >= threshold.

    ``threshold`` defaults to the card's operating threshold (chosen on validation data).
    """
    from orbitml.nn.cosmic_unet import predict_prob

    norm = card.get("normalisation", {})
    kind = norm.get("kind", "snr_asinh")
    if kind not in NORMALISATIONS:
        raise OrbitmlInputError(f"model card normalisation {kind!r} is not supported (known: "
                                f"{', '.join(NORMALISATIONS)})")
    bkg = _background(frame, background)
    soft = float(norm.get("softening", 3.0))
    # a nominal gain (browse images) says nothing about the noise: measure it on the frame instead, the
    # same quantity the gain-based model estimates (for a frame whose gain is right both agree)
    measured = kind == "noise_asinh" or frame.sources.get("gain") == "nominal"
    if measured:
        x = normalise_noise(frame.data, bkg, softening=soft, bad=frame.bad)
    else:
        x = normalise(frame.data, frame.gain, frame.read_noise, bkg, softening=soft, bad=frame.bad)
    prob = predict_prob(model, x, engine=engine)
    thr = float(card.get("threshold", 0.5) if threshold is None else threshold)
    mask = (prob >= thr) & ~frame.bad
    out = clean_frame(frame.data, mask) if clean else frame.data
    from orbitml.nn.weights import simulated_notice

    params = {"threshold": thr, "model": card.get("name", "cosmic_unet"),
              "noisesrc": "measured" if measured else "gain"}
    if card.get("weights_sha256"):
        params["modelsha"] = str(card["weights_sha256"])[:16]
    notice = simulated_notice(card)
    if notice:
        params["notice"] = notice
    return Detection(mask=mask, clean=out, method="unet", prob=prob.astype(np.float32), params=params)
