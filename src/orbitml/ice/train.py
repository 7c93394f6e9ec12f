"""``orbitml ice train MANIFEST``: train a chunk classifier on labelled chunks.

Chunks go through :func:`orbitml.ice.prep.prepare_chunk` (defect repair when enabled, block-mean
downsampling to the input size, per-chunk normalisation), so training sees exactly what ``scan``
will.  Augmentation (training side only, drawn from ``(seed, epoch, item)``): synthetic hot pixels
and line defects planted into the raw chunk *before* preparation, on no-ice chunks (label stays
no-ice) and, less often, on ice chunks (label stays ice); brightness and contrast jitter on the
normalised input; rotations and flips only when asked (shadows point away from the sun, so
orientation carries meaning).  The validation split is by source image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from orbitml.errors import OrbitmlInputError
from orbitml.ice.anomaly import AnomalySettings
from orbitml.ice.labels import ChunkReader, LabelledChunk, read_labels, split_by_image
from orbitml.ice.prep import ChunkSettings, prepare_chunk

__all__ = ["AugmentConfig", "CorroborationConfig", "ModelConfig", "TrainManifest", "ChunkDataset", "train",
           "load_train_manifest"]


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defects: bool = True
    p_defect_negative: float = Field(0.6, ge=0, le=1)
    p_defect_positive: float = Field(0.25, ge=0, le=1)
    max_hot: int = Field(12, ge=0)
    max_lines: int = Field(3, ge=0)
    jitter: bool = True
    brightness: float = Field(0.2, ge=0)
    contrast: float = Field(0.2, ge=0, lt=1)
    flips: bool = False
    rot90: bool = False


class AnomalyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    k: float = 6.0
    min_excess: float = 60.0
    max_hot: int = 3
    max_line: int = 40


class CorroborationConfig(BaseModel):
    """The corroborated image rule (``orbitml.ice.scan``): written to the card, applied by scan."""

    model_config = ConfigDict(extra="forbid")
    threshold: float | None = Field(None, gt=0, lt=1, description="corroborating window's threshold (None: the "
                                    "chunk threshold)")
    looks: bool = Field(True, description="confirmation looks, shifted by `shift`, for lone positive chunks")
    shift: float = Field(0.25, gt=0, lt=1, description="look shift as a fraction of the chunk")
    edge: bool = Field(True, description="a lone positive whose evidence no other window sees whole counts")


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    architecture: str = "ice_xception"
    stem: int = 128
    blocks: list[int] = Field(default_factory=lambda: [256, 512, 728])
    head: int = 1024
    dropout: float = Field(0.5, ge=0, lt=1)
    pool: str = Field("avg", pattern="^(avg|max)$", description="global pooling: avg (the paper) or max")


class TrainManifest(BaseModel):
    """What to train on and how (YAML, unknown keys rejected; paths relative to the manifest)."""

    model_config = ConfigDict(extra="forbid")
    labels: str = Field(..., description="class folder tree or CSV of (image, row, col, label)")
    out: str = "ice_model"
    chunk: int = Field(1024, ge=8)
    input_size: int = Field(256, ge=8)
    overlap: int | None = None
    black_policy: str | float | None = "any"
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    epochs: int = Field(25, ge=1)
    batch_size: int = Field(25, ge=1)
    lr: float = Field(1e-3, gt=0)
    val_fraction: float = Field(0.2, ge=0, lt=1)
    threshold: float = Field(0.6, gt=0, lt=1)
    corroboration: CorroborationConfig = Field(default_factory=CorroborationConfig)
    seed: int = 0
    device: str = "auto"
    threads: int = Field(1, ge=1, description="torch threads (1: on a shared machine more threads are slower)")
    simulated: bool = False
    simulated_description: str | None = None


def load_train_manifest(path: str | os.PathLike) -> TrainManifest:
    from orbitml.io.manifest import load_manifest, resolve_path

    man = load_manifest(path, TrainManifest)
    base = Path(path).parent
    man.labels = resolve_path(man.labels, base)
    man.out = resolve_path(man.out, base)
    return man


def settings_from(man: TrainManifest) -> ChunkSettings:
    return ChunkSettings(chunk=man.chunk, input_size=man.input_size, overlap=man.overlap,
                         black_policy=man.black_policy, anomaly=AnomalySettings(**man.anomaly.model_dump()))


class ChunkDataset:
    """torch Dataset of ``(x (1, in, in) float32, y float32)`` for labelled chunks."""

    def __init__(self, chunks: list[LabelledChunk], settings: ChunkSettings, augment: AugmentConfig | None = None,
                 seed: int = 0):
        self.chunks, self.settings, self.augment, self.seed = chunks, settings, augment, seed
        self.epoch = 0
        self.reader = ChunkReader()

    def __len__(self) -> int:
        return len(self.chunks)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, i: int):
        import torch

        from orbitml.simulate.hirise import plant_defects

        c = self.chunks[i]
        px = np.array(self.reader(c), dtype=np.float32)
        a = self.augment
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if a is not None and a.defects:
            p = a.p_defect_positive if c.label else a.p_defect_negative
            if rng.random() < p:
                valid = px != self.settings.black_value
                plant_defects(px, int(rng.integers(1, a.max_hot + 1)) if a.max_hot else 0,
                              int(rng.integers(0, a.max_lines + 1)), rng, valid)
        x, _ = prepare_chunk(px, self.settings)
        if a is not None:
            if a.jitter:
                x = x * np.float32(1 + rng.uniform(-a.contrast, a.contrast)) + np.float32(
                    rng.uniform(-a.brightness, a.brightness))
            if a.rot90:
                x = np.rot90(x, int(rng.integers(4)), axes=(1, 2))
            if a.flips and rng.random() < 0.5:
                x = x[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.tensor(float(c.label))


class _EpochSetter:
    """Lightning callback: a fresh augmentation draw every epoch."""

    def __new__(cls, ds):
        import lightning as L

        class _CB(L.Callback):
            def on_train_epoch_start(self, trainer, pl_module):
                ds.set_epoch(trainer.current_epoch)

        return _CB()


def chunk_metrics(prob: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    pred = prob >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    out = {"n": int(len(y)), "n_ice": int(y.sum()), "precision": tp / (tp + fp) if tp + fp else float("nan"),
           "recall": tp / (tp + fn) if tp + fn else float("nan"),
           "accuracy": float((pred == (y == 1)).mean()) if len(y) else float("nan"),
           "brier": float(np.mean((prob - y) ** 2)) if len(y) else float("nan")}
    out["roc_auc"] = float(roc_auc_score(y, prob)) if 0 < y.sum() < len(y) else float("nan")
    return out


def train(man: TrainManifest, progress: bool = False, console=None) -> dict[str, Any]:
    """Train; writes ``<out>.safetensors`` + ``<out>.json`` (model card), the log and run.json; returns the card."""
    import torch
    from torch.utils.data import DataLoader

    from orbitml import __version__
    from orbitml.io.provenance import write_run_info
    from orbitml.nn.ice_xception import build_model, describe_model, lightning_module, predict_proba
    from orbitml.nn.training import fit, resolve_device
    from orbitml.nn.weights import save_weights
    from orbitml.tiling.predict import tune_malloc

    tune_malloc()  # keeps activation buffers on the heap (2-3x faster steps with glibc)
    torch.set_num_threads(man.threads)
    device = resolve_device(man.device)
    settings = settings_from(man)
    chunks = read_labels(man.labels, man.chunk)
    train_c, val_c, train_im, val_im = split_by_image(chunks, man.val_fraction, man.seed)
    # read one chunk of each side now, so a bad file fails before any training
    reader = ChunkReader()
    for c in (train_c[0], *(val_c[:1])):
        reader(c)
    arch = man.model.architecture
    kw = ({"stem": man.model.stem, "blocks": tuple(man.model.blocks), "head": man.model.head,
           "dropout": man.model.dropout, "pool": man.model.pool} if arch == "ice_xception" else {})
    torch.manual_seed(man.seed)
    net = build_model(arch, **kw)
    info = describe_model(net)
    if console is not None:
        console.print(f"model {arch}: {info['n_parameters']:,} parameters; {len(train_c)} training chunks from "
                      f"{len(train_im)} images, {len(val_c)} validation chunks from {len(val_im)} images; input "
                      f"{man.chunk} -> {man.input_size} px")
    train_ds = ChunkDataset(train_c, settings, man.augment, man.seed)
    val_ds = ChunkDataset(val_c, settings, None, man.seed) if val_c else None
    g = torch.Generator().manual_seed(man.seed)
    tl = DataLoader(train_ds, batch_size=man.batch_size, shuffle=True, generator=g, num_workers=0)
    vl = DataLoader(val_ds, batch_size=man.batch_size, shuffle=False, num_workers=0) if val_ds else None
    out = Path(man.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    module = lightning_module(net, man.lr)
    history = fit(module, tl, vl, out_dir=out.parent / f"{out.name}_training", max_epochs=man.epochs,
                  seed=man.seed, device=device, progress=progress, callbacks=[_EpochSetter(train_ds)])
    net = module.net.cpu().eval()
    metrics: dict[str, Any] = {}
    if val_ds is not None:
        xs = np.stack([val_ds[i][0].numpy() for i in range(len(val_ds))])
        ys = np.array([c.label for c in val_c], float)
        metrics = chunk_metrics(predict_proba(net, xs), ys, man.threshold)
    card = {
        "name": out.name, "task": "ice / no-ice classification of HiRISE chunks", "orbitml_version": __version__,
        "architecture": arch, "model_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
        **info, "output": "one logit; sigmoid = ice probability", "threshold": man.threshold,
        "chunking": settings.to_card(), "corroboration": man.corroboration.model_dump(),
        "input": {"chunk_px": man.chunk, "input_px": man.input_size, "downsample_factor": settings.factor,
                  "channels": 1, "grayscale": "band mean for colour products"},
        "training_data": {"labels": man.labels, "n_chunks": len(chunks), "train_images": train_im,
                          "val_images": val_im, "n_train": len(train_c), "n_val": len(val_c),
                          "simulated": bool(man.simulated),
                          "simulated_description": man.simulated_description},
        "training": {"epochs": man.epochs, "batch_size": man.batch_size, "lr": man.lr, "optimizer": "Adam",
                     "loss": "binary cross-entropy", "seed": man.seed, "device": device,
                     "augment": man.augment.model_dump(), "val_split": "by source image",
                     "history": history[-1] if history else {}},
        "metrics": {"validation_chunks": metrics},
    }
    save_weights(net, out, card)
    write_run_info(out.parent, "orbitml ice train", man.model_dump(), seed=man.seed, inputs=[man.labels],
                   name=f"{out.name}.run.json")
    card["n_parameters"] = info["n_parameters"]
    return card


def load_model(path: str | os.PathLike):
    """``(net, card, settings)`` from ``<path>.safetensors`` + card (no pickle)."""
    from orbitml.nn.ice_xception import build_model
    from orbitml.nn.weights import load_state_into, load_weights

    state, card = load_weights(path)
    if "chunking" not in card:
        raise OrbitmlInputError("model card has no 'chunking' section: not an orbitml ice model", path)
    kw = dict(card.get("model_kwargs") or {})
    if "blocks" in kw:
        kw["blocks"] = tuple(kw["blocks"])
    net = build_model(card.get("architecture", "ice_xception"), **kw)
    load_state_into(net, state, path)
    return net, card, ChunkSettings.from_card(card)
