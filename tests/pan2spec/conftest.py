"""Fixtures: small simulated pairs and tiny trained models, built once per session."""

from __future__ import annotations

import pytest
import yaml

TINY = {"architecture": "Unet", "encoder": "tu-mobilenetv3_small_050", "encoder_depth": 3,
        "model_kwargs": {"decoder_channels": [16, 8, 8]}}


@pytest.fixture(scope="session")
def sim_data(tmp_path_factory):
    """Made through the CLI (covers `orbitml pan2spec simulate`)."""
    from orbitml.cli.main import cli_run

    root = tmp_path_factory.mktemp("p2s_sim")
    assert cli_run(["pan2spec", "simulate", "--out", str(root), "--pairs", "3", "--size", "128", "--seed", "3"]) == 0
    man = yaml.safe_load((root / "train.yaml").read_text())
    assert man["pairs"] == ["pairs/pair_0"] and man["val_pairs"] == ["pairs/pair_1"]
    return root, {"pairs": man["pairs"] + man["val_pairs"] + man["test_pairs"], "manifest": root / "train.yaml"}


def _manifest(root, name, **kw):
    man = {"pairs": ["pairs/pair_0"], "val_pairs": ["pairs/pair_1"], "test_pairs": ["pairs/pair_2"],
           "out": name, "model": TINY, "patch_size": 32, "batch_size": 8, "epochs": 1, "device": "cpu",
           "progress": False, "epoch_size": 8, **kw}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(man))
    return path


@pytest.fixture(scope="session")
def regression_model(sim_data):
    """Trained through the CLI (covers `orbitml pan2spec train`)."""
    from orbitml.cli.main import cli_run

    root, _ = sim_data
    man = _manifest(root, "reg_model")
    assert cli_run(["pan2spec", "train", str(man)]) == 0
    return root / "reg_model" / "model.safetensors"


@pytest.fixture(scope="session")
def classifier_model(sim_data):
    from orbitml.pan2spec.train import load_train_manifest, train

    root, _ = sim_data
    man = _manifest(root, "cls_model", task="classification", use_dem=True, normalisation="global",
                    bins={"n": 8, "r": 4.0, "spacing": "sid", "l1_weight": 0.9})
    train(load_train_manifest(man))
    return root / "cls_model" / "model.safetensors"
