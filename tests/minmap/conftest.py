"""Fixtures for the minmap tests: one tiny simulated example (scene, truth, libraries) per session."""

from __future__ import annotations

import os

import pytest
import yaml

TINY_NET = {"patch": 11, "width": 8, "c3": 2, "head": 8}


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory):
    """A 24 x 24 simulated example written by ``write_simulation`` (as ``orbitml minmap simulate`` does)."""
    from orbitml.minmap.run import write_simulation

    d = tmp_path_factory.mktemp("minmap_sim")
    write_simulation(d, shape=(24, 24), seed=3)
    return d


def tiny_manifest(folder, **over) -> os.PathLike:
    """A manifest for a seconds-long training on the simulated example; ``over`` replaces top-level keys."""
    man = {"scene": "scene.img", "library_dir": "libraries", "simulated": True, "seed": 0, "out": "model",
           "augment": {"n_per_class": 20}, "patches": {"n_train": 64, "n_val": 16},
           "network": dict(TINY_NET), "projection": {"dims": 4},
           "training": {"epochs": 1, "batch_size": 32, "threads": 1}}
    man.update(over)
    path = folder / f"manifest_{abs(hash(yaml.safe_dump(man))) % 10**8}.yaml"
    path.write_text(yaml.safe_dump(man), encoding="utf-8")
    return path
