"""Lightning glue for :class:`~orbitml.nn.pan2spec.Pan2SpecNet`: masked regression or binned classification."""

from __future__ import annotations

import lightning as L
import torch

from orbitml.nn.pan2spec import Bins, Pan2SpecNet, classification_loss, masked_regression_loss

__all__ = ["Pan2SpecModule", "EpochSetter"]


class Pan2SpecModule(L.LightningModule):
    """Batches ``(x, y, valid)``: x ``(N, C, d, d)``, y ``(N, N_S, d, d)`` normalised targets, valid bool."""

    def __init__(self, net: Pan2SpecNet, *, loss: str = "mse", bins: Bins | None = None,
                 class_weights: torch.Tensor | None = None, l1_weight: float = 0.0, decode: str = "expectation",
                 lr: float = 1e-3):
        super().__init__()
        self.net, self.loss_kind, self.bins, self.l1_weight, self.decode, self.lr = net, loss, bins, l1_weight, \
            decode, lr
        self.register_buffer("class_weights", class_weights if class_weights is not None else torch.ones(1),
                             persistent=False)
        self._has_weights = class_weights is not None

    def _loss_and_pred(self, batch):
        x, y, valid = batch
        out = self.net(x)
        if self.net.task == "classification":
            w = self.class_weights if self._has_weights else None
            loss = classification_loss(out, y, valid, self.bins, w, self.l1_weight)
            pred = self.bins.decode(out.softmax(dim=1), self.decode)
        else:
            loss = masked_regression_loss(out, y, valid, self.loss_kind)
            pred = out
        return loss, pred

    def training_step(self, batch, batch_idx):
        loss, _ = self._loss_and_pred(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch[0].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        loss, pred = self._loss_and_pred(batch)
        _, y, valid = batch
        rmse = torch.sqrt(masked_regression_loss(pred, y, valid, "mse"))
        n = batch[0].shape[0]
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=n)
        self.log("val_rmse", rmse, on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.lr)


class EpochSetter(L.Callback):
    """Draws a new set of training patches at the start of every epoch."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.dataset.set_epoch(trainer.current_epoch)
