"""Training and validation patch samplers over one or many scenes (files read by windows).

Both are map-style datasets (``len``, ``[i]``) that torch's ``DataLoader`` accepts as they are
(numpy arrays are collated into tensors); :meth:`torch_dataset` wraps them in a real
``torch.utils.data.Dataset`` when a subclass is required.  Item ``i`` depends only on
``(seed, epoch, i)``, so results are reproducible in any order and across DataLoader workers
(each worker re-opens the files).

An item is ``(patch, valid)``, or ``(patch, target, valid)`` when ``targets`` (scenes on the same
pixel grids, e.g. CRISM bands for a CTX input) are given: ``patch`` is float32 ``(C, d, d)`` with
nodata replaced by ``fill_value``, ``valid`` is a bool ``(d, d)`` mask (input and target valid) so
that losses can ignore nodata.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.tiling.chunker import chunk_offsets
from orbitml.tiling.sources import Source, invalid_mask, open_source

__all__ = ["PatchSampler", "GridSampler"]


def _as_list(obj: Any) -> list:
    if isinstance(obj, list | tuple):
        return list(obj)
    return [obj]


class _Base:
    def __init__(self, scenes_or_paths: Any, size: int, targets: Any = None, fill_value: float = 0.0,
                 dtype: Any = np.float32):
        self.sources: list[Source] = [open_source(s) for s in _as_list(scenes_or_paths)]
        if not self.sources:
            raise OrbitmlInputError("no scenes given to the sampler")
        self.targets: list[Source] | None = None
        if targets is not None:
            self.targets = [open_source(t) for t in _as_list(targets)]
            if len(self.targets) != len(self.sources):
                raise OrbitmlInputError(f"{len(self.targets)} targets for {len(self.sources)} scenes")
            for s, t in zip(self.sources, self.targets, strict=True):
                if (s.height, s.width) != (t.height, t.width):
                    raise OrbitmlInputError(f"target {t.name} is {t.height} x {t.width} px but scene {s.name} is "
                                            f"{s.height} x {s.width} px; resample it onto the scene grid first")
        self.size = int(size)
        for s in self.sources:
            if self.size > s.height or self.size > s.width:
                raise OrbitmlInputError(f"patch size {self.size} px is larger than scene {s.name} "
                                        f"({s.height} x {s.width} px)")
        self.fill_value, self.dtype = fill_value, np.dtype(dtype)

    def read(self, k: int, row: int, col: int):
        """The item at scene ``k``, window origin ``(row, col)``: ``(patch, valid)`` or with target."""
        d = self.size
        src = self.sources[k]
        block = src.read(row, row + d, col, col + d)
        bad = invalid_mask(block, src.nodata)
        patch = block.astype(self.dtype, copy=True)
        patch[:, bad] = self.fill_value
        if self.targets is None:
            return patch, ~bad
        tsrc = self.targets[k]
        tblock = tsrc.read(row, row + d, col, col + d)
        tbad = invalid_mask(tblock, tsrc.nodata)
        target = tblock.astype(self.dtype, copy=True)
        target[:, tbad] = self.fill_value
        return patch, target, ~(bad | tbad)

    def _valid_fraction(self, k: int, row: int, col: int) -> float:
        d = self.size
        bad = invalid_mask(self.sources[k].read(row, row + d, col, col + d), self.sources[k].nodata)
        if self.targets is not None:
            t = self.targets[k]
            bad |= invalid_mask(t.read(row, row + d, col, col + d), t.nodata)
        return 1.0 - float(bad.mean())

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def torch_dataset(self):
        """This sampler as a ``torch.utils.data.Dataset`` returning tensors."""
        import torch
        from torch.utils.data import Dataset

        sampler = self

        class _TorchPatches(Dataset):
            def __len__(self) -> int:
                return len(sampler)

            def __getitem__(self, i: int):
                return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in sampler[i])

        return _TorchPatches()


class PatchSampler(_Base):
    """``n`` random ``size x size`` patches per epoch with at least ``min_valid`` valid pixels.

    Scenes are drawn in proportion to their number of patch positions; a patch with too few valid
    pixels is redrawn (up to ``max_tries`` times, then a clear error).  :meth:`set_epoch` draws a
    new set of patches; ``window(i)`` tells where item ``i`` comes from.
    """

    def __init__(self, scenes_or_paths: Any, size: int, n: int, min_valid: float = 0.2, seed: int = 0, *,
                 targets: Any = None, max_tries: int = 100, fill_value: float = 0.0, dtype: Any = np.float32):
        super().__init__(scenes_or_paths, size, targets, fill_value, dtype)
        if n < 1:
            raise OrbitmlInputError(f"n must be at least 1, got {n}")
        if not 0 <= min_valid <= 1:
            raise OrbitmlInputError(f"min_valid must be in [0, 1], got {min_valid}")
        self.n, self.min_valid, self.seed, self.max_tries, self.epoch = int(n), float(min_valid), int(seed), \
            int(max_tries), 0
        npos = np.array([(s.height - size + 1) * (s.width - size + 1) for s in self.sources], dtype=float)
        self._p = npos / npos.sum()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def window(self, i: int) -> tuple[int, int, int]:
        """``(scene index, row, col)`` of item ``i`` in the current epoch."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        d = self.size
        for _ in range(self.max_tries):
            k = int(rng.choice(len(self.sources), p=self._p))
            s = self.sources[k]
            row, col = int(rng.integers(0, s.height - d + 1)), int(rng.integers(0, s.width - d + 1))
            if self.min_valid <= 0 or self._valid_fraction(k, row, col) >= self.min_valid:
                return k, row, col
        names = ", ".join(s.name for s in self.sources)
        raise OrbitmlInputError(f"no {d} x {d} patch with at least {self.min_valid:.0%} valid pixels found in "
                                f"{self.max_tries} draws from {names}; lower min_valid or check the nodata value")

    def __getitem__(self, i: int):
        return self.read(*self.window(i))


class GridSampler(_Base):
    """Validation patches on a regular grid (stride ``stride``, default ``size``), last ones shifted back
    inside the image so the edges are covered, keeping those with at least ``min_valid`` valid pixels."""

    def __init__(self, scenes_or_paths: Any, size: int, stride: int | None = None, min_valid: float = 0.2, *,
                 targets: Any = None, fill_value: float = 0.0, dtype: Any = np.float32):
        super().__init__(scenes_or_paths, size, targets, fill_value, dtype)
        stride = self.size if stride is None else int(stride)
        if not 1 <= stride <= self.size:
            raise OrbitmlInputError(f"stride must be in [1, size] = [1, {self.size}], got {stride}")
        self.stride, self.min_valid = stride, float(min_valid)
        self.windows: list[tuple[int, int, int]] = []
        for k, s in enumerate(self.sources):
            for r in chunk_offsets(s.height, self.size, stride):
                for c in chunk_offsets(s.width, self.size, stride):
                    if self.min_valid <= 0 or self._valid_fraction(k, r, c) >= self.min_valid:
                        self.windows.append((k, r, c))

    def __len__(self) -> int:
        return len(self.windows)

    def window(self, i: int) -> tuple[int, int, int]:
        return self.windows[i]

    def __getitem__(self, i: int):
        if not 0 <= i < len(self.windows):
            raise IndexError(i)
        return self.read(*self.windows[i])
