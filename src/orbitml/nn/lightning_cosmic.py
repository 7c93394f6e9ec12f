"""Lightning glue for :class:`~orbitml.nn.cosmic_unet.CosmicUNet`: weighted, masked pixel BCE."""

from __future__ import annotations

import lightning as L
import torch
from torch.nn import functional as F

from orbitml.nn.cosmic_unet import CosmicUNet


def masked_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Mean binary cross-entropy over pixels with weight > 0; hit pixels count ``pos_weight`` times.

    ``weight`` is 0 where the truth is unknown (a real hit already in the base frame, a bad pixel).
    """
    w = weight * (1.0 + (pos_weight - 1.0) * target)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (loss * w).sum() / w.sum().clamp_min(1.0)


class CosmicSegmenter(L.LightningModule):
    """Trains a CosmicUNet on batches ``(x, target, weight)`` of shape ``(N, 1, H, W)``."""

    def __init__(self, base: int = 8, lr: float = 3e-3, pos_weight: float = 10.0, max_steps: int = 1000,
                 levels: int = 2):
        super().__init__()
        self.save_hyperparameters()
        self.net = CosmicUNet(base=base, levels=levels)
        self.train_losses: list[float] = []
        self.val_losses: list[float] = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y, w = batch
        loss = masked_bce(self.net(x), y, w, self.hparams.pos_weight)
        self.train_losses.append(float(loss.detach()))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y, w = batch
        loss = masked_bce(self.net(x), y, w, self.hparams.pos_weight)
        self.val_losses.append(float(loss))
        self.log("val_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        # constant rate for the first 70% of the steps, then a linear decay to 10% (steadier final weights)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)
        total = max(int(self.hparams.max_steps), 2)

        def factor(step: int) -> float:
            frac = step / total
            return 1.0 if frac < 0.7 else max(0.1, 1.0 - 3.0 * (frac - 0.7))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
