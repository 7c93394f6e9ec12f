"""Lightning glue for :class:`~orbitml.nn.minmap_cnn.MinmapCNN`: Dice-Focal + abundance loss, paper stopping rule.

Batches are ``(x (N, R, patch, patch), class (N,), abundances (N, K))``.  The loss is
``dice_focal(class logits) + abundance_weight * MSE(softmax abundances, synthesised abundances)``;
rows whose abundances are NaN (labelled scene pixels: class known, abundances not) count only in
the class loss.
:class:`AccuracyLossStop` ends training once train *and* validation accuracy reach ``min_accuracy``
and both losses are at most ``max_loss`` (Habashi et al. 2025: 0.993 and 0.11).
"""

from __future__ import annotations

import lightning as L
import torch
from torch.nn import functional as F  # noqa: N812

from orbitml.nn.minmap_cnn import dice_focal_loss

__all__ = ["MinmapLightning", "AccuracyLossStop"]


class MinmapLightning(L.LightningModule):
    def __init__(self, net: torch.nn.Module, lr: float = 2e-3, abundance_weight: float = 5.0,
                 focal_gamma: float = 2.0, max_steps: int = 1000):
        super().__init__()
        self.net = net
        self.lr, self.abundance_weight, self.focal_gamma = float(lr), float(abundance_weight), float(focal_gamma)
        self.max_steps = int(max_steps)

    def forward(self, x):
        return self.net(x)

    def _step(self, batch, stage: str):
        x, y, a = batch
        logits, ab = self.net(x)
        logits, ab = logits[:, :, 0, 0], ab[:, :, 0, 0]
        cls = dice_focal_loss(logits, y, gamma=self.focal_gamma)
        known = torch.isfinite(a).all(dim=1)  # labelled scene pixels have no abundance target (NaN)
        mse = F.mse_loss(ab[known], a[known]) if bool(known.any()) else ab.sum() * 0.0
        loss = cls + self.abundance_weight * mse
        acc = (logits.argmax(1) == y).float().mean()
        n = x.shape[0]
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        self.log(f"{stage}_acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        self.log(f"{stage}_abundance_rmse", mse.sqrt(), on_step=False, on_epoch=True, batch_size=n)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=max(self.max_steps, 2),
                                                    pct_start=0.2)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class AccuracyLossStop(L.Callback):
    """Stop when train and val accuracy >= ``min_accuracy`` and train and val loss <= ``max_loss``."""

    def __init__(self, min_accuracy: float = 0.993, max_loss: float = 0.11):
        super().__init__()
        self.min_accuracy, self.max_loss = float(min_accuracy), float(max_loss)
        self.stopped_epoch: int | None = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        m = trainer.callback_metrics
        need = ("train_acc", "val_acc", "train_loss", "val_loss")
        if not all(k in m for k in need):
            return
        ok = (float(m["train_acc"]) >= self.min_accuracy and float(m["val_acc"]) >= self.min_accuracy
              and float(m["train_loss"]) <= self.max_loss and float(m["val_loss"]) <= self.max_loss)
        if ok:
            self.stopped_epoch = int(trainer.current_epoch)
            trainer.should_stop = True
