"""The streaming core: read tile rows, run the model, blend by weighted mean, emit finished rows.

Memory is bounded by one strip of input rows (``tile`` rows, full width), one batch, and a rolling
accumulator of ``tile - 2*margin`` output rows; it does not grow with the image height.

Blending: for each output pixel, ``sum(w_t * y_t) / sum(w_t)`` over the tiles ``t`` whose core
covers it, with ``w_t = 0`` where the input pixel is nodata (it stays nodata in the output).  The
mean is accumulated in float64.  A constant model returns exactly its constant and an identity model
exactly its input: for float32 (or narrower) outputs of float32 model values, rounding the float64
mean removes its ~1e-15 relative error; for float64 or integer outputs the running min and max of
the contributions are kept and the mean is clipped to them (a weighted mean lies in that range, so
the clip only removes rounding) -- see :func:`_needs_clip`.

Tiles are visited row by row, left to right, and batches never span two tile rows; a band of
output rows computed on its own (dask) therefore sees the same model calls and the same
accumulation order as the whole image, and the results are bit-identical.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.tiling.sources import Source, invalid_mask
from orbitml.tiling.windows import check_tiling, reflect_index, weights

__all__ = ["Plan", "make_plan", "make_runner", "stream_rows", "finalize", "default_nodata"]


@dataclass
class Plan:
    height: int
    width: int
    tile: int
    stride: int
    margin: int
    pad: int
    row_offsets: list[int]
    col_offsets: list[int]
    core_weights: np.ndarray  # (L, L), L = tile - 2 * margin
    batch_size: int
    fill_value: float
    in_dtype: np.dtype
    out_dtype: np.dtype
    out_nodata: float
    out_bands: int | None

    @property
    def core(self) -> int:
        return self.tile - 2 * self.margin

    @property
    def n_tiles(self) -> int:
        return len(self.row_offsets) * len(self.col_offsets)

    def rows_for(self, a: int, b: int) -> list[int]:
        """Indices of the tile rows whose core touches output rows ``[a, b)``."""
        m, L = self.margin, self.core
        return [i for i, y in enumerate(self.row_offsets) if y + m < b and y + m + L > a]


def default_nodata(dtype: np.dtype) -> float:
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.floating):
        return float("nan")
    info = np.iinfo(dtype)
    return float(info.max if info.min == 0 else info.min)


def make_plan(source: Source, *, tile: int, stride: int | None, overlap: int | None = None, margin: int = 0,
              weights_kind: Any = "gaussian", batch_size: int = 8, fill_value: float = 0.0,
              in_dtype: Any = None, out_dtype: Any = "float32", out_nodata: float | None = None,
              out_bands: int | None = None) -> Plan:
    from orbitml.tiling.windows import _offsets

    stride = check_tiling(source.height, source.width, tile, stride, overlap, margin, what=f"image {source.name}")
    if batch_size < 1:
        raise OrbitmlInputError(f"batch_size must be at least 1, got {batch_size}")
    pad = (tile - stride) // 2
    L = tile - 2 * margin
    if in_dtype is None:
        in_dtype = np.float64 if source.dtype == np.float64 else np.float32
    out_dtype = np.dtype(out_dtype)
    nodata = default_nodata(out_dtype) if out_nodata is None else float(out_nodata)
    if not np.issubdtype(out_dtype, np.floating) and not np.isfinite(nodata):
        raise OrbitmlInputError(f"out_nodata {nodata} cannot be stored in {out_dtype}")
    return Plan(source.height, source.width, int(tile), stride, int(margin), pad,
                _offsets(source.height, tile, stride, pad), _offsets(source.width, tile, stride, pad),
                weights(weights_kind, L, L), int(batch_size), float(fill_value), np.dtype(in_dtype),
                out_dtype, nodata, out_bands)


class _TorchRunner:
    """Runs a torch module on numpy batches (CPU or CUDA), in eval mode, without gradients."""

    def __init__(self, module, device: str | None):
        self.module = module
        self.device = device
        self._ready = False

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        if not self._ready:
            dev = torch.device(self.device or "cpu")
            self.module.to(dev)
            self.module.eval()
            p = next(self.module.parameters(), None)
            self._dtype = p.dtype if p is not None else torch.float32
            self._dev = dev
            self._ready = True
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self._dev, dtype=self._dtype)
            y = self.module(x)
        if not isinstance(y, torch.Tensor):
            raise OrbitmlInputError(f"the model returned {type(y).__name__}, expected one tensor (N, K, h, w)")
        return y.detach().cpu().numpy()


def make_runner(fn: Any, device: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy batch -> numpy batch callable from a numpy function or a ``torch.nn.Module``."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(fn, torch.nn.Module):
        return _TorchRunner(fn, device)
    if isinstance(fn, _TorchRunner) or callable(fn):
        return fn
    raise OrbitmlInputError(f"fn must be a callable or a torch.nn.Module, got {type(fn).__name__}")


def _needs_clip(model_dtype: np.dtype, out_dtype: np.dtype) -> bool:
    """Whether blended values need clipping to the contributions' range to be exact.

    Accumulated in float64, a weighted mean of equal values ``v`` is ``v (1 + e)`` with ``|e|`` of order
    ``1e-15``; when the model's values are exactly representable in a float output narrower than
    float64, rounding to it returns ``v`` exactly, so no clip is needed.  For float64 or integer
    outputs, or wider model outputs, the running min and max are kept and the mean clipped to them.
    """
    model_dtype, out_dtype = np.dtype(model_dtype), np.dtype(out_dtype)
    narrow_float = np.issubdtype(out_dtype, np.floating) and out_dtype.itemsize < 8
    fits = np.issubdtype(model_dtype, np.floating) and model_dtype.itemsize <= out_dtype.itemsize
    return not (narrow_float and fits)


def finalize(num, den, mn, mx, out_dtype: np.dtype, nodata: float) -> np.ndarray:
    """Weighted means of accumulated rows as ``out_dtype``, nodata where no valid tile contributed."""
    ok = den > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        val = num / den
    if mn is not None:
        np.clip(val, mn, mx, out=val)
    if np.issubdtype(out_dtype, np.floating):
        val[:, ~ok] = nodata
        return val.astype(out_dtype, copy=False)
    info = np.iinfo(out_dtype)
    np.rint(val, out=val)
    np.clip(val, info.min, info.max, out=val)
    val[:, ~ok] = nodata
    val[np.isnan(val)] = nodata
    return val.astype(out_dtype)


def _check_output(y: Any, n: int, plan: Plan, name: str) -> np.ndarray:
    y = np.asarray(y)
    t = plan.tile
    if y.ndim != 4 or y.shape[0] != n or y.shape[2:] != (t, t):
        raise OrbitmlInputError(f"the model returned shape {tuple(y.shape)} for a batch of shape "
                                f"({n}, C, {t}, {t}); expected ({n}, K, {t}, {t})", name)
    if plan.out_bands is not None and y.shape[1] != plan.out_bands:
        raise OrbitmlInputError(f"the model returned {y.shape[1]} bands, expected out_bands={plan.out_bands}", name)
    return y


def stream_rows(source: Source, runner: Callable, plan: Plan, a: int, b: int,
                emit: Callable[[int, np.ndarray], None], advance: Callable[[int], None] | None = None) -> None:
    """Compute output rows ``[a, b)`` and call ``emit(first_row, block (K, n, W))`` in row order."""
    H, W, t, m, L, pad = plan.height, plan.width, plan.tile, plan.margin, plan.core, plan.pad
    a, b = max(a, 0), min(b, H)
    rows = plan.rows_for(a, b)
    xs = plan.col_offsets
    cols = reflect_index(np.arange(xs[0], xs[-1] + t), W)
    acc: list[np.ndarray] | None = None
    fill = plan.in_dtype.type(plan.fill_value)
    for k, i in enumerate(rows):
        base = plan.row_offsets[i] + m
        if acc is not None and k > 0:  # roll the accumulator down by one stride
            s = plan.stride
            for arr, init in zip(acc, (0.0, 0.0, np.inf, -np.inf), strict=False):
                arr[..., : L - s, :] = arr[..., s:, :]
                arr[..., L - s:, :] = init
        y0 = plan.row_offsets[i]
        strip = source.read_reflect(reflect_index(np.arange(y0, y0 + t), H), cols)
        bad = invalid_mask(strip, source.nodata)
        any_bad = bool(bad.any())
        if any_bad:  # never write into the caller's array
            strip = strip.astype(plan.in_dtype, copy=True)
            strip[:, bad] = fill
        else:
            strip = strip.astype(plan.in_dtype, copy=False)
        for j0 in range(0, len(xs), plan.batch_size):
            js = range(j0, min(j0 + plan.batch_size, len(xs)))
            batch = np.stack([strip[:, :, xs[j] + pad: xs[j] + pad + t] for j in js])
            y = _check_output(runner(batch), len(js), plan, source.name)
            if acc is None:
                K = y.shape[1]
                mdt = y.dtype if np.issubdtype(y.dtype, np.floating) else np.float64
                acc = [np.zeros((K, L, W)), np.zeros((L, W))]
                if _needs_clip(y.dtype, plan.out_dtype):
                    acc += [np.full((K, L, W), np.inf, mdt), np.full((K, L, W), -np.inf, mdt)]
                scratch = np.empty((K, L, L))
            num, den = acc[0], acc[1]
            mn, mx = (acc[2], acc[3]) if len(acc) == 4 else (None, None)
            if y.shape[1] != num.shape[0]:
                raise OrbitmlInputError(f"the model returned {y.shape[1]} bands after {num.shape[0]} before",
                                        source.name)
            for n, j in enumerate(js):
                c0 = xs[j] + m
                lo, hi = max(c0, 0), min(c0 + L, W)
                if hi <= lo:
                    continue
                o = y[n, :, m: m + L, m + lo - c0: m + hi - c0]
                w = plan.core_weights[:, lo - c0: hi - c0]
                cs = slice(lo, hi)
                numv = num[:, :, cs]
                tmp = scratch[:, :, : hi - lo]
                good = None
                if any_bad and (vb := bad[m: m + L, lo - xs[0]: hi - xs[0]]).any():
                    good = ~vb
                    w = w * good
                if mn is not None:
                    mnv, mxv = mn[:, :, cs], mx[:, :, cs]
                    np.minimum(mnv, o, out=mnv, where=True if good is None else good)
                    np.maximum(mxv, o, out=mxv, where=True if good is None else good)
                np.multiply(o, w, out=tmp)
                np.add(numv, tmp, out=numv)
                den[:, cs] += w
        if advance is not None:
            advance(len(xs))
        end = base + plan.stride if k + 1 < len(rows) else base + L
        r0, r1 = max(base, a), min(end, b)
        if r1 > r0 and acc is not None:
            sl = slice(r0 - base, r1 - base)
            num, den = acc[0], acc[1]
            mn, mx = (acc[2][:, sl], acc[3][:, sl]) if len(acc) == 4 else (None, None)
            emit(r0, finalize(num[:, sl], den[sl], mn, mx, plan.out_dtype, plan.out_nodata))
