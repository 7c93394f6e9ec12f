"""Normalisation of inputs (CTX, DEM) and targets (CRISM bands): none, global, image-wise, patch-wise.

* ``none``: raw values; outputs are in the units of the training CRISM bands (I/F).
* ``global``: one mean / standard deviation per channel over every training pair (pooled); outputs
  are transformed back to I/F with the stored target statistics.
* ``image`` (default, the paper's best): each pair's channels standardised by that pair's own
  statistics; at inference the CTX image is standardised by its own statistics.  The outputs are
  z-scores per band (mean 0, std 1 over the image) and cannot be turned back into I/F without the
  CRISM observation itself.
* ``patch``: every patch (training) or tile (inference) standardised by its own statistics;
  outputs are z-scores per tile.

Statistics are computed over valid pixels only; invalid pixels become 0 (the mean) after
normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError

__all__ = ["MODES", "Normaliser", "pooled", "standardise", "UNITS"]

MODES = ("none", "global", "image", "patch")
UNITS = {
    "none": "I/F (units of the training CRISM bands)",
    "global": "I/F (inverse of the global normalisation)",
    "image": "image-wise z-score per band (mean 0, std 1 over the image); not invertible to I/F "
             "without the CRISM observation",
    "patch": "patch-wise z-score per band (per tile); not invertible to I/F",
}


def pooled(stats: list[list[dict[str, float]]], counts: list[int]) -> list[dict[str, float]]:
    """Pool per-image channel statistics (mean, std) weighted by the valid pixel counts."""
    n = np.asarray(counts, float)
    out = []
    for c in range(len(stats[0])):
        mu = np.array([s[c]["mean"] for s in stats])
        var = np.array([s[c]["std"] for s in stats]) ** 2
        m = float((n * mu).sum() / n.sum())
        v = float((n * (var + (mu - m) ** 2)).sum() / n.sum())
        out.append({"mean": m, "std": float(np.sqrt(v))})
    return out


def standardise(x: np.ndarray, valid: np.ndarray, stats: list[dict[str, float]] | None = None) -> np.ndarray:
    """``(C, ...)`` channels standardised by ``stats`` (or by their own valid pixels); invalid -> 0."""
    out = np.zeros(x.shape, dtype=np.float32)
    for c in range(x.shape[0]):
        if stats is None:
            v = x[c][valid]
            mu, sd = (float(v.mean()), float(v.std())) if v.size else (0.0, 1.0)
        else:
            mu, sd = stats[c]["mean"], stats[c]["std"]
        sd = sd if sd > 1e-12 else 1.0
        out[c] = np.where(valid, (x[c] - mu) / sd, 0.0)
    return out


@dataclass
class Normaliser:
    mode: str = "image"
    input_stats: list[dict[str, float]] | None = None  # global mode
    target_stats: list[dict[str, float]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in MODES:
            raise OrbitmlInputError(f"unknown normalisation {self.mode!r}; use one of {', '.join(MODES)}")

    @classmethod
    def fit(cls, mode: str, pairs: list, use_dem: bool = False) -> Normaliser:
        """Global statistics pooled over the training pairs' stats.json (other modes store none)."""
        norm = cls(mode)
        if mode == "global":
            counts = [p.stats["n_valid"] for p in pairs]
            inp = [p.stats["ctx"] + (p.stats["dem"] if use_dem else []) for p in pairs]
            norm.input_stats = pooled(inp, counts)
            norm.target_stats = pooled([p.stats["crism"] for p in pairs], counts)
        return norm

    @property
    def units(self) -> str:
        return UNITS[self.mode]

    @property
    def invertible(self) -> bool:
        return self.mode in ("none", "global")

    def _input_stats_for(self, pair_stats: dict | None, use_dem: bool):
        if self.mode == "global":
            return self.input_stats
        if self.mode == "image":
            if pair_stats is None:
                raise OrbitmlInputError("image-wise normalisation needs the image's statistics")
            return pair_stats["ctx"] + (pair_stats["dem"] if use_dem else [])
        return None

    def inputs(self, x: np.ndarray, valid: np.ndarray, pair_stats: dict | None = None, use_dem: bool = False):
        if self.mode == "none":
            return np.where(valid, x, 0.0).astype(np.float32)
        return standardise(x, valid, self._input_stats_for(pair_stats, use_dem))

    def targets(self, y: np.ndarray, valid: np.ndarray, pair_stats: dict | None = None) -> np.ndarray:
        if self.mode == "none":
            return np.where(valid, y, 0.0).astype(np.float32)
        if self.mode == "global":
            return standardise(y, valid, self.target_stats)
        if self.mode == "image":
            return standardise(y, valid, pair_stats["crism"])
        return standardise(y, valid, None)

    def to_card(self) -> dict[str, Any]:
        return {"mode": self.mode, "input_stats": self.input_stats, "target_stats": self.target_stats,
                "output_units": self.units, "invertible": self.invertible}

    @classmethod
    def from_card(cls, d: dict[str, Any]) -> Normaliser:
        return cls(d["mode"], d.get("input_stats"), d.get("target_stats"))
