import json
import stat

import numpy as np
import pytest
import torch
from torch import nn

from orbitml.errors import OrbitmlInputError
from orbitml.nn.training import fit, resolve_device
from orbitml.nn.weights import file_digest, load_state_into, load_weights, save_weights, simulated_notice


def test_weights_round_trip_and_card(tmp_path):
    torch.manual_seed(0)
    m = nn.Linear(3, 2)
    card = {"architecture": "Lin", "training_data": {"simulated": True}}
    w = save_weights(m, tmp_path / "model", card)
    assert w.suffix == ".safetensors" and w.exists()
    assert stat.S_IMODE(w.stat().st_mode) == 0o644
    on_disk = json.loads(w.with_suffix(".json").read_text())
    assert on_disk["n_parameters"] == 8
    assert on_disk["weights_sha256"] == file_digest(w)
    state, card2 = load_weights(w, architecture="Lin")
    m2 = load_state_into(nn.Linear(3, 2), state, w)
    x = torch.randn(4, 3)
    assert torch.equal(m(x), m2(x))
    assert simulated_notice(card2).startswith("model trained on simulated data")
    with pytest.raises(OrbitmlInputError, match="expected Other"):
        load_weights(w, architecture="Other")
    with pytest.raises(OrbitmlInputError, match="do not match"):
        load_state_into(nn.Linear(4, 2), state, w)
    w2 = save_weights(m, tmp_path / "other", card)
    data = bytearray(w2.read_bytes())
    data[-1] ^= 1
    w2.write_bytes(bytes(data))
    with pytest.raises(OrbitmlInputError, match="digest"):
        load_weights(w2)
    (tmp_path / "bad.safetensors").write_bytes(b"not a model")
    with pytest.raises(OrbitmlInputError, match="not a readable safetensors"):
        load_weights(tmp_path / "bad.safetensors")


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(OrbitmlInputError, match="no CUDA"):
            resolve_device("cuda")
        assert resolve_device("auto") == "cpu"
    with pytest.raises(OrbitmlInputError):
        resolve_device("tpu")


def test_fit_learns_and_logs(tmp_path):
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    class Reg(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def training_step(self, batch, i):
            x, y = batch
            loss = nn.functional.mse_loss(self.lin(x), y)
            self.log("train_loss", loss, on_epoch=True, on_step=False)
            return loss

        def validation_step(self, batch, i):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self.lin(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(64, 2)).astype(np.float32))
    y = x @ torch.tensor([[2.0], [-1.0]]) + 0.5
    dl = DataLoader(TensorDataset(x, y), batch_size=16)
    mod = Reg()
    hist = fit(mod, dl, dl, out_dir=tmp_path, max_epochs=30, seed=0, device="cpu")
    assert len(hist) == 30
    assert hist[-1]["val_loss"] < 1e-3 < hist[0]["val_loss"]
    assert (tmp_path / "training_log.csv").read_text().splitlines()[0].startswith("epoch,step")
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert torch.allclose(mod.lin.weight, torch.tensor([[2.0, -1.0]]), atol=0.02)
