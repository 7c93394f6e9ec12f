"""Chunk settings and the one chunk -> network-input path shared by training, scan and evaluation.

A chunk of ``chunk`` x ``chunk`` px is (1) repaired of hot pixels and line defects when
``anomaly.enabled`` (:mod:`orbitml.ice.anomaly`), (2) downsampled by block means to
``input_size`` px (e.g. 1024 -> 256, a factor of 4), (3) normalised per chunk: the mean and the
standard deviation of its valid pixels, ``(x - mean) / max(std, 1)``, clipped to +-8; no-data pixels
become 0 (the mean).  The settings travel in the model card and ``scan`` applies the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.ice.anomaly import AnomalyReport, AnomalySettings, repair_defects

__all__ = ["ChunkSettings", "parse_black_policy", "prepare_chunk", "prepare_batch", "downsample"]

PAPER_BLACK = 0.0  # Gergácz & Kereszturi drop every chunk that has any black pixel


def parse_black_policy(value: Any) -> Any:
    """``"any"`` (drop chunks with any black pixel, the paper's rule), ``"keep"``, a fraction ``"0.1"``
    or ``"center:0.5"`` -> the :class:`~orbitml.tiling.TileChunker` ``black_policy``."""
    if value is None or isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, list | tuple):
        return (str(value[0]), float(value[1]))
    s = str(value).strip().lower()
    if s in ("any", "paper", "drop"):
        return PAPER_BLACK
    if s in ("keep", "none", "off"):
        return None
    if s.startswith("center:"):
        return ("center", float(s.split(":", 1)[1]))
    try:
        f = float(s)
    except ValueError:
        raise OrbitmlInputError(f"black policy must be any, keep, a fraction or center:C, got {value!r}") from None
    if not 0 <= f <= 1:
        raise OrbitmlInputError(f"black fraction must be in [0, 1], got {f}")
    return f


@dataclass
class ChunkSettings:
    chunk: int = 1024
    input_size: int = 256
    overlap: int | None = None  # None: half a chunk
    black_policy: Any = PAPER_BLACK
    black_value: float = 0
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)
    normalisation: str = "chunk_mean_std"

    def __post_init__(self):
        if self.chunk < 8:
            raise OrbitmlInputError(f"chunk size must be at least 8 px, got {self.chunk}")
        if self.input_size < 8 or self.input_size > self.chunk:
            raise OrbitmlInputError(f"input size must be in [8, chunk={self.chunk}], got {self.input_size}")
        if self.overlap is None:
            self.overlap = self.chunk // 2
        if not 0 <= self.overlap < self.chunk:
            raise OrbitmlInputError(f"overlap must be in [0, {self.chunk}), got {self.overlap}")
        self.black_policy = parse_black_policy(self.black_policy)
        if isinstance(self.anomaly, dict):
            self.anomaly = AnomalySettings(**self.anomaly)

    @property
    def factor(self) -> float:
        return self.chunk / self.input_size

    def to_card(self) -> dict[str, Any]:
        d = asdict(self)
        d["anomaly"] = self.anomaly.to_dict()
        d["normalisation"] = {"kind": self.normalisation, "formula": "clip((x - mean) / max(std, 1), -8, 8) over "
                              "the chunk's valid pixels after defect repair and block-mean downsampling; nodata -> 0"}
        d["downsample"] = {"method": "block mean (area)", "factor": self.factor}
        return d

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> ChunkSettings:
        c = dict(card.get("chunking") or {})
        if not c:
            raise OrbitmlInputError("model card has no 'chunking' section (not an orbitml ice model?)")
        norm = c.get("normalisation")
        return cls(chunk=int(c["chunk"]), input_size=int(c["input_size"]), overlap=c.get("overlap"),
                   black_policy=c.get("black_policy"), black_value=c.get("black_value", 0),
                   anomaly=AnomalySettings(**(c.get("anomaly") or {"enabled": False})),
                   normalisation=norm["kind"] if isinstance(norm, dict) else (norm or "chunk_mean_std"))

    def replace(self, **kw) -> ChunkSettings:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d.update(kw)
        return ChunkSettings(**d)


def downsample(x: np.ndarray, out: int) -> np.ndarray:
    """Block-mean (area) downsampling of a square ``(S, S)`` float array to ``(out, out)``."""
    s = x.shape[-1]
    if s == out:
        return x
    if s % out == 0:
        f = s // out
        return x.reshape(out, f, out, f).mean(axis=(1, 3))
    import torch
    from torch.nn import functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]
    return F.adaptive_avg_pool2d(t, out)[0, 0].numpy()


def prepare_chunk(pixels: np.ndarray, settings: ChunkSettings, nodata: float | None = None
                  ) -> tuple[np.ndarray, AnomalyReport]:
    """``(S, S)`` or ``(1, S, S)`` chunk -> ``(1, input_size, input_size)`` float32 network input."""
    x = pixels[0] if pixels.ndim == 3 else pixels
    valid = x != settings.black_value
    if nodata is not None:
        valid &= x != nodata
    if np.issubdtype(x.dtype, np.floating):
        valid &= np.isfinite(x)
    rep = AnomalyReport()
    if settings.anomaly.enabled and valid.any():
        x, _, rep = repair_defects(x, valid, settings.anomaly)
    x = x.astype(np.float32)
    if valid.all():  # the usual case under the paper's black policy: no masking needed
        mean, std = float(x.mean()), float(x.std())
        z = (x - np.float32(mean)) / np.float32(max(std, 1.0))
    else:
        vals = x[valid]
        mean = float(vals.mean()) if vals.size else 0.0
        std = float(vals.std()) if vals.size else 1.0
        z = np.where(valid, (x - mean) / max(std, 1.0), 0.0).astype(np.float32)
    z = downsample(z, settings.input_size)
    return np.clip(z, -8, 8)[None].astype(np.float32), rep


def prepare_batch(pixels: np.ndarray, settings: ChunkSettings, nodata: float | None = None
                  ) -> tuple[np.ndarray, AnomalyReport]:
    """``(N, 1, S, S)`` -> ``(N, 1, in, in)`` and the summed defect counts."""
    total = AnomalyReport()
    out = np.empty((len(pixels), 1, settings.input_size, settings.input_size), np.float32)
    for i, p in enumerate(pixels):
        out[i], rep = prepare_chunk(p, settings, nodata)
        total += rep
    return out, total
