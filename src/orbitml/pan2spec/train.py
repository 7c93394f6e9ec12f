"""``orbitml pan2spec train MANIFEST``: train a CTX -> CRISM band model on pair folders.

Manifest (YAML; paths relative to the manifest's folder)::

    pairs: [pairs/p0, pairs/p1]        # training pair folders (orbitml pan2spec build)
    val_pairs: [pairs/p2]              # validation (epoch size = its patch count; metrics in the card)
    out: model                         # folder: model.safetensors + model.json, log, checkpoints
    task: regression                   # or classification
    loss: mse                          # regression: mse | l1
    bins: {n: 20, r: 6.0, spacing: equidistant, class_weights: inverse_gaussian, l1_weight: 0.0,
           decode: expectation}       # classification; l1_weight 0.9 = 0.1 CE + 0.9 L1
    normalisation: image               # none | global | image | patch
    use_dem: false
    model: {architecture: Unet, encoder: efficientnet-b0, encoder_depth: 5, encoder_weights: null}
    patch_size: 256
    batch_size: 8
    epochs: 30
    lr: 0.001
    seed: 0
    device: auto
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from orbitml.errors import OrbitmlInputError
from orbitml.pan2spec.pairs import Pair, load_pair

__all__ = ["ModelConfig", "BinsConfig", "TrainManifest", "train", "load_train_manifest", "SIM_DESCRIPTION"]

SIM_DESCRIPTION = "simulated CTX/CRISM pairs (orbitml.simulate.pan2spec)"


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    architecture: str = "Unet"
    encoder: str = "efficientnet-b0"
    encoder_depth: int = Field(5, ge=1, le=5)
    encoder_weights: str | None = None
    pad: int = Field(8, ge=0)
    model_kwargs: dict[str, Any] = Field(default_factory=dict)


class BinsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(20, ge=2)
    r: float = Field(6.0, gt=0)
    spacing: Literal["equidistant", "sid"] = "equidistant"
    class_weights: Literal["inverse_gaussian", "none"] = "inverse_gaussian"
    l1_weight: float = Field(0.0, ge=0, le=1)
    decode: Literal["expectation", "argmax"] = "expectation"


class TrainManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairs: list[str] = Field(min_length=1)
    val_pairs: list[str] = Field(min_length=1)
    test_pairs: list[str] = Field(default_factory=list)
    out: str
    task: Literal["regression", "classification"] = "regression"
    loss: Literal["mse", "l1"] = "mse"
    bins: BinsConfig = Field(default_factory=BinsConfig)
    normalisation: Literal["none", "global", "image", "patch"] = "image"
    use_dem: bool = False
    model: ModelConfig = Field(default_factory=ModelConfig)
    patch_size: int = Field(256, ge=16)
    batch_size: int = Field(8, ge=1)
    epochs: int = Field(30, ge=1)
    epoch_size: int | None = Field(None, ge=1)
    lr: float = Field(1e-3, gt=0)
    augment: bool = True
    min_valid: float = Field(0.2, ge=0, le=1)
    seed: int = 0
    device: str = "auto"
    threads: int | None = Field(None, ge=1)
    progress: bool = True


def load_train_manifest(path: str | os.PathLike) -> TrainManifest:
    from orbitml.io.manifest import load_manifest, resolve_path

    man = load_manifest(path, TrainManifest)
    base = Path(path).resolve().parent
    man.pairs = [resolve_path(p, base) for p in man.pairs]
    man.val_pairs = [resolve_path(p, base) for p in man.val_pairs]
    man.test_pairs = [resolve_path(p, base) for p in man.test_pairs]
    man.out = resolve_path(man.out, base)
    return man


def _check_pairs(man: TrainManifest) -> tuple[list[Pair], list[Pair], list[float]]:
    train = [load_pair(p) for p in man.pairs]
    val = [load_pair(p) for p in man.val_pairs]
    bands = train[0].wavelengths
    for p in train + val:
        if len(p.wavelengths) != len(bands) or np.max(np.abs(np.subtract(p.wavelengths, bands))) > 25:
            raise OrbitmlInputError(f"pair bands {p.wavelengths} nm differ from the first pair's {bands} nm", p.folder)
        if man.use_dem and p.dem is None:
            raise OrbitmlInputError("use_dem is set but this pair has no dem.tif (build it with --dem)", p.folder)
        h, w = p.stats["shape"]
        if min(h, w) < man.patch_size:
            raise OrbitmlInputError(f"pair is {h} x {w} px, smaller than patch_size {man.patch_size}", p.folder)
    return train, val, bands


def train(man: TrainManifest, manifest_path: str | os.PathLike | None = None, console=None) -> dict[str, Any]:
    """Train, evaluate on the validation pairs, save weights + card; returns the card."""
    import torch
    from torch.utils.data import DataLoader

    from orbitml.io.manifest import write_manifest
    from orbitml.io.provenance import write_run_info
    from orbitml.nn.lightning_pan2spec import EpochSetter, Pan2SpecModule
    from orbitml.nn.pan2spec import Bins, Pan2SpecNet, class_weights
    from orbitml.nn.training import fit, resolve_device
    from orbitml.nn.weights import save_weights, simulated_notice
    from orbitml.pan2spec.data import PairPatches
    from orbitml.pan2spec.evaluate import evaluate_pairs, fit_baseline
    from orbitml.pan2spec.normalise import Normaliser
    from orbitml.pan2spec.predict import Model

    t0 = time.time()
    out = Path(man.out)
    weights_file = out / "model.safetensors"
    train_pairs, val_pairs, bands = _check_pairs(man)
    device = resolve_device(man.device)
    if man.threads:
        torch.set_num_threads(int(man.threads))
    norm = Normaliser.fit(man.normalisation, train_pairs, man.use_dem)
    in_ch = 2 if man.use_dem else 1
    bins = Bins(man.bins.n, man.bins.r, man.bins.spacing) if man.task == "classification" else None
    torch.manual_seed(man.seed)  # the initial weights: seeded like everything after them
    net = Pan2SpecNet(man.model.architecture, man.model.encoder, in_ch, len(bands), man.task, man.bins.n,
                      man.model.encoder_depth, man.model.encoder_weights, man.model.pad, man.model.model_kwargs)
    val_ds = PairPatches(val_pairs, man.patch_size, norm, grid=True, use_dem=man.use_dem, min_valid=man.min_valid)
    if len(val_ds) == 0:
        raise OrbitmlInputError(f"no {man.patch_size} px validation patch has {man.min_valid:.0%} valid pixels",
                                val_pairs[0].folder)
    per_image = PairPatches(val_pairs[:1], man.patch_size, norm, grid=True, use_dem=man.use_dem,
                            min_valid=man.min_valid)
    n_epoch = man.epoch_size or max(len(per_image), man.batch_size)
    train_ds = PairPatches(train_pairs, man.patch_size, norm, n=n_epoch, use_dem=man.use_dem, augment=man.augment,
                           seed=man.seed, min_valid=man.min_valid)
    simulated = any(p.simulated for p in train_pairs)
    if console is not None:
        console.print(f"training on {len(train_pairs)} pairs, {n_epoch} patches of {man.patch_size} px per epoch "
                      f"(= patches in validation image {val_pairs[0].folder.name}), {man.epochs} epochs, {device}")
        if simulated:
            console.print(f"[yellow]note: training on {SIM_DESCRIPTION}; the model card and every product "
                          "will say so[/yellow]")
    cw = torch.tensor(class_weights(man.bins.n), dtype=torch.float32) \
        if bins is not None and man.bins.class_weights == "inverse_gaussian" else None
    module = Pan2SpecModule(net, loss=man.loss, bins=bins, class_weights=cw, l1_weight=man.bins.l1_weight,
                            decode=man.bins.decode, lr=man.lr)
    g = torch.Generator().manual_seed(man.seed)
    train_loader = DataLoader(train_ds, batch_size=man.batch_size, shuffle=True, generator=g, drop_last=False)
    val_loader = DataLoader(val_ds, batch_size=man.batch_size, shuffle=False)
    history = fit(module, train_loader, val_loader, out_dir=out, max_epochs=man.epochs, seed=man.seed,
                  device=device, progress=man.progress, callbacks=[EpochSetter(train_ds)])
    net = module.net.cpu().eval()
    card: dict[str, Any] = {
        "architecture": "pan2spec", "task": man.task, "loss": man.loss if man.task == "regression" else (
            "cross-entropy" + (f" ({1 - man.bins.l1_weight:g} CE + {man.bins.l1_weight:g} L1)"
                               if man.bins.l1_weight else "")),
        "model": {"architecture": man.model.architecture, "encoder": man.model.encoder,
                  "encoder_depth": man.model.encoder_depth, "encoder_weights": man.model.encoder_weights,
                  "pad": man.model.pad, "model_kwargs": man.model.model_kwargs},
        "in_channels": in_ch, "inputs": ["CTX"] + (["DEM"] if man.use_dem else []),
        "bands_nm": bands, "normalisation": norm.to_card(), "patch_size": man.patch_size,
        "bins": ({**bins.to_card(), "class_weights": man.bins.class_weights,
                  "weights": class_weights(bins.n).tolist() if cw is not None else None,
                  "l1_weight": man.bins.l1_weight} if bins is not None else None),
        "decode": man.bins.decode,
        "training_data": {"pairs": [str(p.folder) for p in train_pairs], "val_pairs": [str(p.folder) for p in
                                                                                     val_pairs],
                          "simulated": simulated,
                          "simulated_description": SIM_DESCRIPTION if simulated else None},
        "training": {"epochs": man.epochs, "epoch_size": n_epoch, "batch_size": man.batch_size, "lr": man.lr,
                     "augment": man.augment, "min_valid": man.min_valid, "device": device,
                     "seconds": round(time.time() - t0, 1), "final": history[-1] if history else {}},
        "seed": man.seed,
    }
    card["baseline"] = fit_baseline(train_pairs, norm, seed=man.seed)
    ev = evaluate_pairs(weights_file, [str(p.folder) for p in val_pairs], None,
                        model=Model(net, {**card, "weights_sha256": None}, weights_file))
    card["metrics"] = {"validation": ev["mean"], "units": ev["units"]}
    save_weights(net, weights_file, card)
    write_manifest(man, out / "manifest.yaml")
    write_run_info(out, "orbitml pan2spec train", man.model_dump(mode="json"), seed=man.seed,
                   inputs=[str(manifest_path)] if manifest_path else None)
    if console is not None:
        v = ev["mean"]
        console.print(f"validation ({ev['units'].split(';')[0]}): network RMSE {v['network']['rmse']:.3f} cos "
                      f"{v['network']['cosine']:.3f} r {v['network']['pearson']:.3f} | albedo baseline RMSE "
                      f"{v['albedo baseline']['rmse']:.3f} cos {v['albedo baseline']['cosine']:.3f} r "
                      f"{v['albedo baseline']['pearson']:.3f}")
        notice = simulated_notice(card)
        if notice:
            console.print(f"[yellow]{notice}[/yellow]")
        console.print(f"model: {weights_file}")
    return card
