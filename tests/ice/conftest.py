"""Session fixtures: one tiny simulated data set and two tiny models trained on it (paper's way, improved)."""

from __future__ import annotations

import pytest

TINY_MODEL = {"stem": 8, "blocks": [16, 32], "head": 32}


@pytest.fixture(scope="session")
def ice_data(tmp_path_factory):
    from orbitml.ice.simdata import simulate_dataset

    out = tmp_path_factory.mktemp("icesim")
    info = simulate_dataset(out, n_train=8, n_heldout=8, shape=(128, 128), chunk=32, input_size=32, seed=3,
                            epochs=10, model=TINY_MODEL, heldout_ice_fraction=0.4, heldout_hot=25,
                            heldout_lines=4)
    return out, info


@pytest.fixture(scope="session")
def ice_models(ice_data):
    from orbitml.ice.train import load_train_manifest, train

    out, _ = ice_data
    cards = {}
    for name, f in (("improved", "train.yaml"), ("paper", "train_paper.yaml")):
        man = load_train_manifest(out / f)
        man.epochs, man.lr = 14, 1e-2  # tiny chunks: a higher rate learns the patches within the test budget
        cards[name] = (man.out, train(man))
    return cards
