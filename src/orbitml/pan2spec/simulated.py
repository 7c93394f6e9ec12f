"""A simulated data set to try the workflow: raw CTX / CRISM / DEM files, built pairs, a training manifest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from orbitml.errors import OrbitmlInputError

__all__ = ["SMALL_MODEL", "simulate_dataset"]

# a small encoder that trains in seconds on a CPU (the paper's: Unet + efficientnet-b0, depth 5)
SMALL_MODEL = {"architecture": "Unet", "encoder": "tu-mobilenetv3_small_050", "encoder_depth": 3,
               "model_kwargs": {"decoder_channels": [32, 16, 8]}}


def simulate_dataset(out: str | os.PathLike, *, n_pairs: int = 4, size: int = 384, seed: int = 0,
                     small_model: bool = True, overwrite: bool = False, bands: tuple[float, ...] | None = None,
                     epochs: int | None = None, patch_size: int | None = None) -> dict[str, Any]:
    """``out/raw/pair_i/{ctx,crism,dem}.tif``, ``out/pairs/pair_i`` (built) and ``out/train.yaml``.

    The last pair is the test pair, the one before it the validation pair, the others train.
    Every pair shares the same geological units (spectra) and differs in terrain and layout.
    """
    import numpy as np

    from orbitml.pan2spec.pairs import PRESETS, build_pair
    from orbitml.simulate.pan2spec import simulate_pair

    if n_pairs < 3:
        raise OrbitmlInputError(f"need at least 3 pairs (train, validation, test), got {n_pairs}")
    out = Path(out)
    manifest = out / "train.yaml"
    if manifest.exists() and not overwrite:
        raise OrbitmlInputError("output exists; pass --overwrite to replace it", manifest)
    rng = np.random.default_rng(seed)
    n_units = 5
    units = np.column_stack([rng.uniform(0.12, 0.35, n_units), rng.uniform(-0.6, 0.6, n_units),
                             rng.uniform(0.0, 0.35, n_units), rng.uniform(0.0, 0.3, n_units),
                             rng.choice([1900.0, 2300.0], n_units)])
    names = []
    for i in range(n_pairs):
        sim = simulate_pair(out / "raw" / f"pair_{i}", ctx_shape=(size, size), seed=seed * 1000 + i,
                            unit_params=units, origin=(1_200_000.0 + 10_000.0 * i, 600_000.0))
        build_pair(sim.ctx_path, sim.crism_path, out / "pairs", name=f"pair_{i}", dem_path=sim.dem_path,
                   bands=bands or PRESETS["evc"], overwrite=overwrite)
        names.append(f"pairs/pair_{i}")
    patch = patch_size or (64 if small_model else 256)
    man = {"pairs": names[:-2], "val_pairs": [names[-2]], "test_pairs": [names[-1]], "out": "model",
           "task": "regression", "normalisation": "image",
           "model": SMALL_MODEL if small_model else {"architecture": "Unet", "encoder": "efficientnet-b0"},
           "patch_size": patch, "batch_size": 8, "epochs": epochs or (15 if small_model else 30), "seed": seed,
           "device": "auto"}
    manifest.write_text("# simulated pairs: the model card and its products will say so\n" +
                        yaml.safe_dump(man, sort_keys=False), encoding="utf-8")
    return {"pairs_dir": out / "pairs", "manifest": manifest, "pairs": names}
