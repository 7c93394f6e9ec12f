import math

import numpy as np
import pytest
import torch

from orbitml.errors import OrbitmlInputError
from orbitml.nn.pan2spec import (
    Bins,
    Pan2SpecNet,
    bin_edges,
    class_weights,
    classification_loss,
    confidence,
    masked_regression_loss,
)


def test_bin_edges_by_hand():
    assert np.allclose(bin_edges(4, 6.0), [-6, -3, 0, 3, 6])
    # SID, K = 2: t_k = (1 + 3)^(k/2) - 1 = 0, 1, 3
    assert np.allclose(bin_edges(4, 3.0, "sid"), [-3, -1, 0, 1, 3])
    e = bin_edges(20, 6.0, "sid")
    w = np.diff(e)
    assert e[0] == -6 and e[-1] == 6 and np.all(np.diff(w[10:]) > 0) and np.allclose(w, w[::-1])
    with pytest.raises(OrbitmlInputError):
        bin_edges(5, 6.0, "sid")


def test_class_weights_by_hand():
    # N_B = 4: i' = -1, -0.5, 0, 0.5
    assert np.allclose(class_weights(4), [1 - math.exp(-1), 1 - math.exp(-0.25), 0.0, 1 - math.exp(-0.25)])
    w = class_weights(20)
    assert w[0] == pytest.approx(1 - math.exp(-1)) and w[10] == 0.0 and w[5] == pytest.approx(1 - math.exp(-0.25))


def test_encode_decode_confidence():
    b = Bins(4, 6.0)
    v = torch.tensor([-9.0, -3.5, -0.1, 0.0, 2.9, 3.0, 100.0])
    assert b.encode(v).tolist() == [0, 0, 1, 2, 2, 3, 3]
    assert np.allclose(b.centres, [-4.5, -1.5, 1.5, 4.5])
    p = torch.tensor([0.1, 0.2, 0.6, 0.1]).reshape(1, 4, 1, 1, 1)
    assert b.decode(p, "argmax").item() == pytest.approx(1.5)
    assert b.decode(p, "expectation").item() == pytest.approx(0.1 * -4.5 + 0.2 * -1.5 + 0.6 * 1.5 + 0.1 * 4.5)
    uni = torch.full((1, 4, 2, 3, 3), 0.25)
    peak, ent = confidence(uni)
    assert torch.allclose(peak, torch.full((1, 3, 3), 0.25)) and torch.allclose(ent, torch.ones(1, 3, 3))
    one = torch.zeros(1, 4, 2, 3, 3)
    one[:, 2] = 1
    peak, ent = confidence(one)
    assert torch.allclose(peak, torch.ones(1, 3, 3)) and torch.allclose(ent, torch.zeros(1, 3, 3), atol=1e-6)


def test_losses_by_hand():
    b = Bins(4, 6.0)
    logits = torch.randn(1, 4, 1, 1, 2, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([[[[2.0, -5.0]]]])  # bins 2 and 0
    valid = torch.tensor([[[True, True]]])
    w = torch.tensor(class_weights(4), dtype=torch.float32)
    lp = logits.log_softmax(1)[0, :, 0, 0]  # (4, 2)
    ce = [-lp[2, 0], -lp[0, 1]]
    expect = (w[2] * ce[0] + w[0] * ce[1]) / (w[2] + w[0])
    assert classification_loss(logits, target, valid, b, w).item() == pytest.approx(expect.item(), rel=1e-5)
    # an invalid pixel is ignored
    v2 = torch.tensor([[[False, True]]])
    assert classification_loss(logits, target, v2, b, w).item() == pytest.approx(ce[1].item(), rel=1e-5)
    # 0.1 CE + 0.9 L1 of the argmax reconstruction (bin centres -4.5, -1.5, 1.5, 4.5)
    centres = torch.tensor(b.centres, dtype=torch.float32)
    recon = centres[logits.argmax(1)][0, 0, 0]
    l1 = (recon - target[0, 0, 0]).abs().mean()
    combined = classification_loss(logits, target, valid, b, w, l1_weight=0.9)
    assert combined.item() == pytest.approx(0.1 * expect.item() + 0.9 * l1.item(), rel=1e-5)
    lg = logits.clone().requires_grad_(True)
    classification_loss(lg, target, valid, b, w, l1_weight=1.0).backward()
    assert lg.grad.abs().sum() > 0  # the argmax term still trains the network (straight-through)
    pred, tgt = torch.tensor([[[[1.0, 5.0]]]]), torch.tensor([[[[0.0, 0.0]]]])
    assert masked_regression_loss(pred, tgt, v2, "mse").item() == pytest.approx(25.0)
    assert masked_regression_loss(pred, tgt, valid, "l1").item() == pytest.approx(3.0)


@pytest.mark.parametrize("task,cin", [("regression", 1), ("classification", 2)])
def test_network_shapes_and_padding(task, cin):
    torch.manual_seed(0)
    net = Pan2SpecNet("Unet", "tu-mobilenetv3_small_050", cin, 3, task, n_bins=5, encoder_depth=3,
                      model_kwargs={"decoder_channels": [8, 8, 8]}).eval()
    with torch.no_grad():
        y = net(torch.randn(2, cin, 37, 45))
    assert y.shape == ((2, 3, 37, 45) if task == "regression" else (2, 5, 3, 37, 45))


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(OrbitmlInputError, match="encoder"):
        Pan2SpecNet("Unet", "no-such-encoder", 1, 3)


def test_imagenet_weights_only_from_the_local_cache():
    try:
        Pan2SpecNet("Unet", "tu-mobilenetv3_small_050", 1, 3, encoder_depth=3, encoder_weights="imagenet",
                    model_kwargs={"decoder_channels": [8, 8, 8]})
    except OrbitmlInputError as exc:  # no download is attempted: a clear error instead
        assert "not available locally" in str(exc)
