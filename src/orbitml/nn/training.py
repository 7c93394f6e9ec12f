"""Lightning training harness shared by the workflows: device choice, seeds, progress, CSV log, checkpoints.

``fit(module, train_loader, val_loader, out_dir=..., max_epochs=..., seed=..., device=...)`` runs a
``LightningModule`` and leaves in ``out_dir``: ``training_log.csv`` (one row per epoch with every
logged metric), ``checkpoints/last.ckpt`` (Lightning's own, for resuming) and returns the per-epoch
history as a list of dicts.  ``device``: ``"cpu"``, ``"cuda"`` (a clear error when no GPU is
present) or ``"auto"`` (CUDA when present).
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from orbitml.errors import OrbitmlInputError

__all__ = ["resolve_device", "fit", "EpochHistory"]


def resolve_device(device: str = "auto") -> str:
    """``"cpu"`` or ``"cuda"`` for ``device`` in {auto, cpu, cuda, cuda:N}."""
    import torch

    d = (device or "auto").lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return "cpu"
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OrbitmlInputError(f"device {device!r} was asked for but no CUDA GPU is available here")
        return "cuda"
    raise OrbitmlInputError(f"unknown device {device!r}; use auto, cpu or cuda")


def _callback_base():
    import lightning as L

    return L.Callback


class EpochHistory(_callback_base()):
    """Collects every logged metric at the end of each validation epoch and appends a CSV row."""

    def __init__(self, csv_path: str | os.PathLike | None = None):
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.csv_path = None if csv_path is None else Path(csv_path)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        row: dict[str, Any] = {"epoch": int(trainer.current_epoch), "step": int(trainer.global_step)}
        for k, v in trainer.callback_metrics.items():
            try:
                row[k] = float(v)
            except (TypeError, ValueError):
                continue
        self.rows.append(row)
        if self.csv_path is not None:
            self._write()

    def _write(self) -> None:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        tmp = self.csv_path.with_name(f".{self.csv_path.name}.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.csv_path)


def fit(module: Any, train_loader: Any, val_loader: Any = None, *, out_dir: str | os.PathLike | None,
        max_epochs: int, seed: int = 0, device: str = "auto", progress: bool = False,
        callbacks: list[Any] | None = None, checkpoint: bool = True, deterministic: bool = True,
        log_name: str = "training_log.csv", gradient_clip_val: float | None = None) -> list[dict[str, Any]]:
    """Train ``module``; returns the per-epoch history (also written to ``out_dir/log_name``)."""
    import lightning as L

    accel = resolve_device(device)
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    L.seed_everything(int(seed), workers=True, verbose=False)
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    history = EpochHistory(None if out is None else out / log_name)
    cbs: list[Any] = [history, *(callbacks or [])]
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        cbs.append(RichProgressBar(leave=True))
    if checkpoint and out is not None:
        from lightning.pytorch.callbacks import ModelCheckpoint

        cbs.append(ModelCheckpoint(dirpath=str(out / "checkpoints"), save_last=True, save_top_k=0,
                                   enable_version_counter=False))
    trainer = L.Trainer(max_epochs=int(max_epochs), accelerator=accel, devices=1, logger=False,
                        enable_checkpointing=bool(checkpoint and out is not None), enable_model_summary=False,
                        enable_progress_bar=progress, deterministic=deterministic, num_sanity_val_steps=0,
                        callbacks=cbs, default_root_dir=str(out) if out is not None else None,
                        gradient_clip_val=gradient_clip_val)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(LeafSpec|does not have many workers|litlogger|"
                                                  "GPU available but not used|deterministic).*")
        trainer.fit(module, train_loader, val_loader)
    module.cpu().eval()
    return history.rows
