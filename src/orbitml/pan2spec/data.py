"""Training and validation patches from pair folders, normalised, with the paper's augmentations.

Training patches are drawn by :class:`orbitml.tiling.PatchSampler` (random ``d x d`` windows with at
least ``min_valid`` valid pixels, item ``i`` fixed by ``(seed, epoch, i)``); validation patches by
:class:`orbitml.tiling.GridSampler`.  One augmentation per training patch, each with probability
1/4: none, a rotation by an angle in [-20, 20] degrees, a random crop of side in [3d/5, 4d/5]
resized back to ``d``, or a random erase (input set to 0, the normalised mean) of a square of side
in [d/5, 2d/5].  Never a flip: the illumination direction is fixed by MRO's orbit and carries
information.  Rotated-in corners become invalid; the valid mask goes with every item so losses
ignore invalid pixels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from orbitml.pan2spec.normalise import Normaliser
from orbitml.tiling import GridSampler, PatchSampler, open_source

__all__ = ["AUGMENTATIONS", "augment", "PairPatches"]

AUGMENTATIONS = ("none", "rotate", "crop", "erase")


def _resample(a: np.ndarray, coords, order: int, cval: float = 0.0) -> np.ndarray:
    return ndi.map_coordinates(a, coords, order=order, mode="constant", cval=cval)


def augment(x: np.ndarray, y: np.ndarray, valid: np.ndarray, rng: np.random.Generator, kind: str | None = None):
    """One augmentation (drawn uniformly unless ``kind``); returns ``(x, y, valid, kind, parameter)``."""
    d = x.shape[-1]
    kind = AUGMENTATIONS[int(rng.integers(4))] if kind is None else kind
    if kind == "none":
        return x, y, valid, kind, None
    rr, cc = np.mgrid[0:d, 0:d].astype(float)
    if kind == "rotate":
        angle = float(rng.uniform(-20.0, 20.0))
        t = math.radians(angle)
        c0 = (d - 1) / 2
        sr = c0 + math.cos(t) * (rr - c0) - math.sin(t) * (cc - c0)
        sc = c0 + math.sin(t) * (rr - c0) + math.cos(t) * (cc - c0)
        coords, param = [sr, sc], angle
    elif kind == "crop":
        s = int(rng.integers(math.ceil(3 * d / 5), math.floor(4 * d / 5) + 1))
        r0, c0_ = int(rng.integers(0, d - s + 1)), int(rng.integers(0, d - s + 1))
        scale = s / d
        coords = [np.clip(r0 + (rr + 0.5) * scale - 0.5, 0, d - 1), np.clip(c0_ + (cc + 0.5) * scale - 0.5, 0, d - 1)]
        param = (r0, c0_, s)
    elif kind == "erase":
        s = int(rng.integers(math.ceil(d / 5), math.floor(2 * d / 5) + 1))
        r0, c0_ = int(rng.integers(0, d - s + 1)), int(rng.integers(0, d - s + 1))
        x = x.copy()
        x[:, r0: r0 + s, c0_: c0_ + s] = 0.0
        return x, y, valid, kind, (r0, c0_, s)
    else:
        raise ValueError(kind)
    xv = np.stack([_resample(b, coords, 1) for b in x]).astype(np.float32)
    yv = np.stack([_resample(b, coords, 1) for b in y]).astype(np.float32)
    vv = _resample(valid.astype(np.float32), coords, 1) > 0.999
    return xv, yv, vv, kind, param


class PairPatches:
    """Normalised ``(x, y, valid)`` patches over pair folders (a torch map-style dataset).

    ``n=None`` with ``grid=True`` gives validation patches on a grid; otherwise ``n`` random patches
    per epoch (:meth:`set_epoch` for a new draw).
    """

    def __init__(self, pairs: list, size: int, normaliser: Normaliser, *, n: int | None = None, grid: bool = False,
                 use_dem: bool = False, augment: bool = False, seed: int = 0, min_valid: float = 0.2):
        self.pairs, self.norm, self.use_dem, self.do_aug = pairs, normaliser, use_dem, augment
        self.seed, self.epoch = int(seed), 0
        ctx = [str(p.ctx) for p in pairs]
        crism = [str(p.crism) for p in pairs]
        if grid:
            self.sampler = GridSampler(ctx, size, min_valid=min_valid, targets=crism)
        else:
            self.sampler = PatchSampler(ctx, size, int(n), min_valid=min_valid, seed=seed, targets=crism)
        self.dem = [open_source(str(p.dem)) for p in pairs] if use_dem else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitem__(self, i: int):
        import torch

        k, r, c = self.sampler.window(i)
        x, y, valid = self.sampler.read(k, r, c)
        d = self.sampler.size
        if self.dem is not None:
            z = self.dem[k].read(r, r + d, c, c + d).astype(np.float32)
            valid = valid & np.isfinite(z).all(axis=0)
            x = np.concatenate([x, np.nan_to_num(z)], axis=0)
        stats = self.pairs[k].stats
        xn = self.norm.inputs(x, valid, stats, self.use_dem)
        yn = self.norm.targets(y, valid, stats)
        if self.do_aug:
            rng = np.random.default_rng([self.seed, self.epoch, i, 7])
            xn, yn, valid, _, _ = augment(xn, yn, valid, rng)
        return torch.from_numpy(np.ascontiguousarray(xn)), torch.from_numpy(np.ascontiguousarray(yn)), \
            torch.from_numpy(np.ascontiguousarray(valid))
