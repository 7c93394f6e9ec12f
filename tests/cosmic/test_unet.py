import json

import numpy as np
import pytest
import torch

from orbitml.errors import OrbitmlInputError
from orbitml.nn.cosmic_unet import CosmicUNet, load_model, predict_prob, save_model


def test_shapes_and_strip_inference_equals_full_pass():
    torch.manual_seed(0)
    net = CosmicUNet(base=4).eval()
    x = np.random.default_rng(0).normal(size=(101, 67)).astype(np.float32)  # odd sizes
    with torch.no_grad():
        full = torch.sigmoid(net(torch.from_numpy(x)[None, None]))[0, 0].numpy()
    strips = predict_prob(net, x, strip=32, halo=16)
    assert full.shape == x.shape
    np.testing.assert_allclose(strips, full, atol=1e-6)
    tiled = predict_prob(net, x, halo=16, engine="tiling")  # orbitml.tiling.predict: same away from edges
    np.testing.assert_allclose(tiled[16:-16, 16:-16], full[16:-16, 16:-16], atol=1e-5)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    net = CosmicUNet(base=4)
    w = save_model(net, tmp_path / "m", {"threshold": 0.7, "normalisation": {"kind": "snr_asinh"}})
    assert w.suffix == ".safetensors" and (tmp_path / "m.json").exists()
    net2, card = load_model(w)
    assert card["threshold"] == 0.7 and card["base"] == 4
    for (k, a), (_, b) in zip(net.state_dict().items(), net2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    (tmp_path / "m.json").write_text(json.dumps({"architecture": "Other"}))
    with pytest.raises(OrbitmlInputError, match="architecture"):
        load_model(w)
    (tmp_path / "bad.safetensors").write_bytes(b"\x80\x04pickle")
    with pytest.raises(OrbitmlInputError, match="safetensors"):
        load_model(tmp_path / "bad.safetensors")


def _positive_net(base, levels):
    torch.manual_seed(3)
    net = CosmicUNet(base=base, levels=levels).eval()
    with torch.no_grad():  # positive weights: no cancellation can hide a dependence
        for p in net.parameters():
            p.abs_()
    return net


@pytest.mark.parametrize("levels", [2, 3])
def test_receptive_radius_bounds_the_measured_one(levels):
    net = _positive_net(3, levels)
    x = torch.zeros(1, 1, 128, 128, requires_grad=True)
    net(x)[0, 0, 64, 64].backward()
    rows, cols = np.nonzero(x.grad[0, 0].numpy())
    reach = max(64 - rows.min(), rows.max() - 64, 64 - cols.min(), cols.max() - 64)
    assert reach <= net.receptive_radius(), (reach, net.receptive_radius())
    assert reach > {2: 5, 3: 12}[levels]  # a third level sees much further (measured 8 and 18)


def test_three_levels_strips_equal_full_pass_on_an_odd_frame():
    torch.manual_seed(0)
    net = CosmicUNet(base=4, levels=3).eval()
    assert net.multiple == 4 and net.receptive_radius() == 23
    x = np.random.default_rng(5).normal(size=(103, 69)).astype(np.float32)  # neither side a multiple of 4
    with torch.no_grad():
        full = torch.sigmoid(net(torch.from_numpy(x)[None, None]))[0, 0].numpy()
    assert full.shape == x.shape
    # strip 26 -> 24 (a multiple of 4); a halo of 6 is below the receptive radius and is raised to 24
    for strip, halo in ((26, 6), (40, 30), (512, 32)):
        np.testing.assert_allclose(predict_prob(net, x, strip=strip, halo=halo), full, atol=1e-6)
    with pytest.raises(OrbitmlInputError, match="levels"):
        CosmicUNet(base=4, levels=1)


def test_two_level_model_keeps_its_tensor_names():
    """Weights saved before ``levels`` existed load unchanged: same names, same shapes."""
    sd = CosmicUNet(base=4).state_dict()
    assert list(sd) == [f"{m}.{p}" for m in ("enc1.0.0", "enc1.1.0", "enc2.0.0", "enc2.1.0", "dec1.0", "head")
                        for p in ("weight", "bias")]
    assert sd["dec1.0.weight"].shape == (4, 12, 3, 3)
    three = CosmicUNet(base=4, levels=3).state_dict()
    assert three["enc3.1.0.weight"].shape == (16, 16, 3, 3) and three["dec2.0.weight"].shape == (8, 24, 3, 3)


def test_three_level_save_load_round_trip(tmp_path):
    torch.manual_seed(2)
    net = CosmicUNet(base=4, levels=3).eval()
    w = save_model(net, tmp_path / "m3", {"threshold": 0.6, "normalisation": {"kind": "snr_asinh"}})
    net2, card = load_model(w)
    assert card["levels"] == 3 and card["base"] == 4 and net2.levels == 3
    assert net.state_dict().keys() == net2.state_dict().keys()
    assert all(torch.equal(a, net2.state_dict()[k]) for k, a in net.state_dict().items())
    x = np.random.default_rng(6).normal(size=(37, 45)).astype(np.float32)
    np.testing.assert_array_equal(predict_prob(net, x), predict_prob(net2, x))
    card.pop("levels")  # a card written before levels existed means 2 levels: its tensors do not fit
    (tmp_path / "m3.json").write_text(json.dumps(card))
    with pytest.raises(OrbitmlInputError, match="do not match the architecture"):
        load_model(w)


def test_manifest_levels_validation_and_card(tmp_path):
    from pydantic import ValidationError

    from orbitml.cosmic.train import TrainManifest, train

    assert TrainManifest().levels == 2
    for bad in ({"levels": 1}, {"levels": 5}, {"levels": 3, "patch": 66}, {"levels": 4, "patch": 36}):
        with pytest.raises(ValidationError):
            TrainManifest(**bad)
    assert TrainManifest(levels=3, patch=68).levels == 3  # 68 is a multiple of 4
    man = TrainManifest(simulated=1, sim_shape=(64, 64), n_patches=16, n_val=4, patch=32, epochs=1,
                        batch_size=8, base=4, levels=3, seed=0, out=str(tmp_path / "t3"), threads=1)
    card = train(man)
    assert card["levels"] == 3
    net, card2 = load_model(tmp_path / "t3.safetensors")
    assert net.levels == 3 and card2["levels"] == 3 and "enc3.0.0.weight" in net.state_dict()


def test_tiny_training_loss_decreases_and_beats_chance(tmp_path):
    from orbitml.cosmic.train import TrainManifest, train

    man = TrainManifest(simulated=1, sim_shape=(96, 96), n_patches=128, n_val=8, patch=32, epochs=4,
                        batch_size=8, base=4, lr=1e-2, seed=0, out=str(tmp_path / "tiny"), threads=1)
    card = train(man)
    tr = card["training"]
    assert tr["last_epoch_loss"] < tr["first_epoch_loss"]
    # chance at a 0.5% false-positive rate detects 0.5% of the hit pixels
    assert card["metrics"]["detection_rate"]["0.005"] > 0.1
    # the same manifest through `orbitml cosmic train`: same seed, same weights bit for bit
    import yaml

    from orbitml.cli.main import cli_run

    d = man.model_dump()
    d["out"] = "tiny2"
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({**d, "sim_shape": list(d["sim_shape"])}))
    assert cli_run(["cosmic", "train", str(tmp_path / "m.yaml"), "--no-progress"]) == 0
    card2 = json.loads((tmp_path / "tiny2.json").read_text())
    assert card2["metrics"] == card["metrics"]
    a, b = load_model(tmp_path / "tiny.safetensors")[0], load_model(tmp_path / "tiny2.safetensors")[0]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_simulated_sky_bases_noise_mismatch_and_psf_width():
    """noise_mismatch makes the true noise the stated factor times what gain and read noise predict (the
    normalisation's model); sky_fwhm_px widens the stars; bad ranges are refused."""
    from pydantic import ValidationError

    from orbitml.cosmic.train import TrainManifest, simulated_bases

    def ratio(b):  # measured pixel noise / the noise the normalisation assumes
        return float(np.median(b.noise_e) / np.sqrt(np.median(b.sky_e) + b.read_noise**2))

    exact = simulated_bases(1, (128, 128), np.random.default_rng(3))[0]
    noisy = simulated_bases(1, (128, 128), np.random.default_rng(3), noise_mismatch=(1.5, 1.5))[0]
    quiet = simulated_bases(1, (128, 128), np.random.default_rng(3), noise_mismatch=(0.8, 0.8))[0]
    assert ratio(exact) == pytest.approx(1.0, abs=0.06)
    assert ratio(noisy) == pytest.approx(1.5, abs=0.09)
    assert ratio(quiet) == pytest.approx(0.8, abs=0.05) and quiet.read_noise > exact.read_noise
    np.testing.assert_array_equal(quiet.e, exact.e)  # same frame, only the claimed read noise differs

    def star_width(fwhm):  # second moment of the brightest star, background removed
        b = simulated_bases(1, (128, 128), np.random.default_rng(5), fwhm_px=(fwhm, fwhm))[0]
        d = b.e - b.sky_e
        r, c = np.unravel_index(np.argmax(d), d.shape)
        w = np.clip(d[max(r - 8, 0):r + 9, max(c - 8, 0):c + 9], 0, None)
        yy = np.mgrid[:w.shape[0], :w.shape[1]][0]
        cy = (yy * w).sum() / w.sum()
        return float(np.sqrt(((yy - cy) ** 2 * w).sum() / w.sum()))

    assert star_width(4.5) > 1.4 * star_width(1.5)
    for bad in ({"noise_mismatch": (1.5, 1.0)}, {"noise_mismatch": (0.1, 1.0)}, {"sky_fwhm_px": (3.0, 2.0)}):
        with pytest.raises(ValidationError):
            TrainManifest(**bad)
