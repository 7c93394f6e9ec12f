"""Train the cosmic-ray U-Net on real and simulated frames with injected simulated hits.

Training data: base frames in electrons -- real frames named in the manifest (their own cosmic rays
are found with L.A.Cosmic, replaced by a local median and *ignored* in the loss, since nobody knows
their exact extent) and simulated sky frames with stars, hot columns and bleeds from
:func:`orbitml.simulate.ccd.simulate_frame`.  Patches cut from them get hits from
:func:`orbitml.simulate.ccd.inject_cosmic_rays`, whose exact masks are the targets.  The validation
patches are drawn with a separate seed; the operating threshold is set on them at ``target_fpr``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy import ndimage as ndi

from orbitml.cosmic.detect import (
    NORMALISATIONS,
    block_background,
    block_noise,
    clean_frame,
    detect_lacosmic,
    normalise,
    normalise_noise,
)
from orbitml.cosmic.evaluate import FPRS, detection_at_fpr, hit_metrics
from orbitml.cosmic.ingest import read_frame
from orbitml.errors import OrbitmlInputError

SOFTENING = 3.0


# bounds of the (lo, hi) manifest ranges
_RANGES = {"tdi_streak_px": (0.5, 200.0), "sky_fwhm_px": (0.5, 20.0), "noise_mismatch": (0.25, 4.0)}


class TrainManifest(BaseModel):
    """``orbitml cosmic train MANIFEST``: what to train on and how (YAML, unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="model name in its card (default: the file name of out)")
    description: str = ""
    instruments: list[str] = Field(default_factory=list, description="instruments the model is meant for "
                                                                     "(orbitml.cosmic.ingest.INSTRUMENTS keys)")
    frames: list[str] = Field(default_factory=list, description="real frames (paths relative to the manifest)")
    hdu: str | None = None
    simulated: int = Field(4, ge=0, le=1000, description="number of simulated base frames")
    mission: dict[Literal["mdis12", "mdis8", "lasco", "hirise_tdi", "longslit"], int] = Field(
        default_factory=dict, description="simulated base frames per kind (orbitml.simulate.ccd."
                                          "simulate_mission_frame): space-mission frames, and longslit, "
                                          "ground-based long-slit spectra")
    tdi_streak_px: tuple[float, float] | None = Field(None, description="line-scan (TDI) hits: streak "
                                                                       "lengths along the scan, lines")
    normalisation: Literal["snr_asinh", "noise_asinh"] = "snr_asinh"
    ignore_saturated: bool = Field(False, description="leave pixels at the top of a simulated frame's DN range "
                                                      "out of the loss (detection never flags them)")
    sim_shape: tuple[int, int] = (256, 256)
    sky_fwhm_px: tuple[float, float] | None = Field(None, description="simulated sky frames: star PSF FWHM drawn "
                                                                     "log-uniform in (lo, hi) px per frame "
                                                                     "(default: 2.5 px for all)")
    noise_mismatch: tuple[float, float] | None = Field(
        None, description="simulated sky frames: the true pixel noise is this factor (log-uniform in (lo, hi)) "
                          "times the one the gain and read noise predict, as in processed frames or headers "
                          "whose read noise is off (default: the noise model is exact)")
    n_hits: float = Field(4.0, gt=0, description="mean number of hits injected per patch (Poisson)")
    patch: int = Field(64, ge=16, le=1024)
    n_patches: int = Field(512, ge=4, le=1_000_000, description="training patches (drawn once, reshuffled each "
                                                                "epoch)")
    n_val: int = Field(64, ge=2, le=100_000, description="validation patches")
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(16, ge=1, le=4096)
    base: int = Field(8, ge=2, le=64)
    levels: int = Field(2, ge=2, le=4, description="U-Net resolutions (2: ~18 px receptive field, 3: ~40 px); "
                                                 "the patch size must be a multiple of 2**(levels-1)")
    lr: float = Field(3e-3, gt=0)
    pos_weight: float = Field(10.0, gt=0)
    target_fpr: float = Field(1e-3, gt=0, lt=1)
    pixel_size_um: float = 15.0
    thickness_um: float = 20.0
    seed: int = 0
    out: str = "cosmic_unet"
    threads: int = Field(2, ge=1, le=256)

    @field_validator("mission")
    @classmethod
    def _mission(cls, v):
        if any(not 0 <= int(n) <= 1000 for n in v.values()):
            raise ValueError("each mission count must be between 0 and 1000")
        return v

    @field_validator("tdi_streak_px", "sky_fwhm_px", "noise_mismatch")
    @classmethod
    def _ordered_range(cls, v, info):
        lo, hi = _RANGES[info.field_name]
        if v is not None and not lo <= v[0] <= v[1] <= hi:
            raise ValueError(f"{info.field_name} must be (lo, hi) with {lo:g} <= lo <= hi <= {hi:g}")
        return v

    @model_validator(mode="after")
    def _patch_fits_levels(self):
        m = 2 ** (self.levels - 1)
        if self.patch % m:
            raise ValueError(f"patch ({self.patch}) must be a multiple of {m} for levels: {self.levels}")
        return self

    @field_validator("sim_shape")
    @classmethod
    def _shape(cls, v):
        if not all(16 <= int(x) <= 8192 for x in v):
            raise ValueError("each side must be between 16 and 8192 pixels")
        return v


def load_manifest(path) -> tuple[TrainManifest, Path]:
    """Parse and validate a YAML manifest; relative frame paths and ``out`` resolve against its folder."""
    from orbitml.io.manifest import load_manifest as _load
    from orbitml.io.manifest import resolve_path

    path = Path(path)
    man = _load(path, TrainManifest)
    base = path.parent
    man.frames = [resolve_path(p, base) for p in man.frames]
    man.out = resolve_path(man.out, base)
    if man.simulated == 0 and not man.frames and not any(man.mission.values()):
        raise OrbitmlInputError("manifest gives no frames and simulated: 0 -- nothing to train on", path)
    return man, path


@dataclass
class BaseImage:
    name: str
    e: np.ndarray  # electrons, float32, real hits removed
    sky_e: np.ndarray
    read_noise: float
    ignore: np.ndarray  # bool: pixels whose truth is unknown
    kind: str = "real"
    chain: Callable[[np.ndarray], np.ndarray] | None = None  # read-out chain applied after injection (e- -> e-)
    noise_e: np.ndarray | None = None  # pixel-noise map of the read-out base (for noise_asinh)
    saturation_e: float | None = None  # top of the read-out range (simulated mission frames)


def base_from_frame(path, hdu=None) -> BaseImage:
    """A real frame in electrons with its own hits found (L.A.Cosmic, sigclip 4), grown, cleaned, ignored."""
    fr = read_frame(path, hdu=hdu)
    det = detect_lacosmic(fr, sigclip=4.0, clean=False)
    grown = ndi.binary_dilation(det.mask, structure=np.ones((3, 3), bool), iterations=2)
    e = clean_frame(fr.data, grown) * np.float32(fr.gain)
    sky = block_background(e, bad=fr.bad)
    return BaseImage(str(path), e.astype(np.float32), sky, fr.read_noise, grown | fr.bad,
                     noise_e=block_noise(e, bad=fr.bad))


def simulated_bases(n: int, shape, rng: np.random.Generator, fwhm_px: tuple[float, float] | None = None,
                    noise_mismatch: tuple[float, float] | None = None) -> list[BaseImage]:
    """``n`` simulated sky frames (:func:`orbitml.simulate.ccd.simulate_frame`): sky 20-3000 e-, read noise
    3-12 e-, stars, hot columns; with ``fwhm_px`` a PSF width per frame, with ``noise_mismatch`` a true noise
    that differs from the gain/read-noise model the normalisation is given (extra Gaussian noise where the
    factor is above 1, a read noise claimed too high where it is below)."""
    from orbitml.simulate.ccd import simulate_frame

    out = []
    for i in range(n):
        sky = float(np.exp(rng.uniform(np.log(20.0), np.log(3000.0))))
        rn = float(rng.uniform(3.0, 12.0))
        area = shape[0] * shape[1] / 65536.0
        fwhm = 2.5 if fwhm_px is None else float(np.exp(rng.uniform(*np.log(fwhm_px))))
        frame, truth = simulate_frame(shape, sky_e=sky, read_noise_e=rn, n_stars=int(rng.integers(5, 40) * area),
                                      hot_columns=int(rng.integers(0, 2)), fwhm_px=fwhm,
                                      seed=int(rng.integers(2**31)))
        claimed = rn
        if noise_mismatch is not None:
            f = float(np.exp(rng.uniform(*np.log(noise_mismatch))))
            model_var = sky + 5.0 + rn**2  # simulate_frame's dark current is 5 e-
            if f >= 1.0:
                extra = rng.normal(0.0, np.sqrt((f**2 - 1.0) * model_var), frame.shape)
                frame = (frame + extra).astype(np.float32)
            else:  # the header's read noise is too high: the normalisation thinks the frame noisier
                claimed = float(np.sqrt(max(model_var / f**2 - sky - 5.0, rn**2)))
        out.append(BaseImage(f"simulated[{i}]", frame, block_background(frame), claimed, np.zeros(shape, bool),
                             kind="sky", noise_e=block_noise(frame)))
    return out


def mission_bases(counts: dict[str, int], shape, rng: np.random.Generator) -> list[BaseImage]:
    """Simulated space-mission base frames (:func:`orbitml.simulate.ccd.simulate_mission_frame`)."""
    from orbitml.simulate.ccd import simulate_mission_frame

    out = []
    for kind in sorted(counts):
        for i in range(int(counts[kind])):
            frame, info = simulate_mission_frame(kind, shape, seed=int(rng.integers(2**31)))
            read = info["chain"](frame)
            out.append(BaseImage(f"{kind}[{i}]", frame, block_background(read), info["read_noise_e"],
                                 np.zeros(shape, bool), kind=kind, chain=info["chain"], noise_e=block_noise(read),
                                 saturation_e=info["saturation_e"]))
    return out


def make_patches(bases: list[BaseImage], n: int, patch: int, n_hits: float, rng: np.random.Generator,
                 pixel_size_um: float = 15.0, thickness_um: float = 20.0, normalisation: str = "snr_asinh",
                 tdi_streak_px: tuple[float, float] | None = None, ignore_saturated: bool = False
                 ) -> dict[str, np.ndarray]:
    """``n`` patches: normalised input ``x``, target ``y`` (exact hit mask), loss ``weight``, ``hit_id``
    and ``base`` (the index of the base frame each patch was cut from)."""
    from orbitml.simulate.ccd import inject_cosmic_rays

    xs = np.empty((n, 1, patch, patch), np.float32)
    ys = np.empty_like(xs)
    ws = np.empty_like(xs)
    ids = np.empty((n, patch, patch), np.int32)
    which = np.empty(n, np.int32)
    for i in range(n):
        which[i] = int(rng.integers(len(bases)))
        b = bases[int(which[i])]
        ny, nx = b.e.shape
        if ny < patch or nx < patch:
            raise OrbitmlInputError(f"base frame {b.name} ({ny}x{nx}) is smaller than the patch size {patch}")
        r, c = int(rng.integers(0, ny - patch + 1)), int(rng.integers(0, nx - patch + 1))
        sl = (slice(r, r + patch), slice(c, c + patch))
        inj = inject_cosmic_rays(b.e[sl], n_hits=int(rng.poisson(n_hits)), pixel_size_um=pixel_size_um,
                                 thickness_um=thickness_um, seed=int(rng.integers(2**31)),
                                 tdi_streak_px=tdi_streak_px)
        img = b.chain(inj.image) if b.chain is not None else inj.image
        if normalisation == "noise_asinh":
            x = normalise_noise(img, b.sky_e[sl], b.noise_e[sl], softening=SOFTENING)
        else:
            x = normalise(img, 1.0, b.read_noise, b.sky_e[sl], softening=SOFTENING)
        k = int(rng.integers(4))
        flip = bool(rng.integers(2))

        def aug(a, k=k, flip=flip):
            a = np.rot90(a, k)
            return np.ascontiguousarray(a[:, ::-1] if flip else a)

        xs[i, 0] = aug(x)
        ys[i, 0] = aug(inj.mask.astype(np.float32))
        known = ~b.ignore[sl]
        if ignore_saturated and b.saturation_e is not None:
            known = known & (img < np.float32(b.saturation_e) * np.float32(0.9999))
        ws[i, 0] = aug(known.astype(np.float32))
        ids[i] = aug(inj.hit_id)
    return {"x": xs, "y": ys, "weight": ws, "hit_id": ids, "base": which}


def _loader(d, batch_size, shuffle, seed):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    ds = TensorDataset(torch.from_numpy(d["x"]), torch.from_numpy(d["y"]), torch.from_numpy(d["weight"]))
    g = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=0)


def validate(model, val: dict[str, np.ndarray], target_fpr: float, kinds: list[str] | None = None
             ) -> dict[str, Any]:
    """Pixel detection rates at :data:`FPRS`, the threshold at ``target_fpr`` and hit metrics there;
    with ``kinds`` (the kind of each base frame) also the detection rate at ``target_fpr`` per kind."""
    import torch

    model.eval()
    with torch.inference_mode():
        prob = torch.sigmoid(model(torch.from_numpy(val["x"]))).numpy()[:, 0]
    valid = val["weight"][:, 0] > 0
    truth = val["y"][:, 0] > 0.5
    rates = detection_at_fpr(prob, truth, sorted({*FPRS, target_fpr}), valid)
    thr = rates[float(target_fpr)]["threshold"]
    hm = hit_metrics(prob >= thr, np.where(valid, val["hit_id"], 0))
    out = {"detection_rate": {f"{k:g}": v["tpr"] for k, v in rates.items()},
           "threshold": float(thr), "hit_recall": hm["recall"], "hit_precision": hm["precision"],
           "n_val_patches": int(len(prob))}
    if kinds is not None and "base" in val:
        per = {}
        kind_of = np.array([kinds[int(i)] for i in val["base"]])
        for k in sorted(set(kind_of)):
            sel = kind_of == k
            pos, neg = truth[sel] & valid[sel], ~truth[sel] & valid[sel]
            if pos.any() and neg.any():
                p = prob[sel]
                per[k] = {"detection_rate": float(np.mean(p[pos] >= thr)), "fpr": float(np.mean(p[neg] >= thr)),
                          "n_patches": int(sel.sum())}
        out["per_kind_at_threshold"] = per
    return out


def training_description(man: TrainManifest) -> str:
    """The sentence the card's simulated notice is made of."""
    parts = []
    if man.simulated:
        parts.append(f"{man.simulated} simulated sky frames")
    parts += [f"{n} simulated {k} frames" for k, n in sorted(man.mission.items()) if n]
    if man.frames:
        parts.append(f"{len(man.frames)} real frame(s) ({', '.join(Path(f).name for f in man.frames)}, "
                     "their own hits excluded from the loss)")
    return "simulated cosmic-ray hits (orbitml.simulate.ccd) injected into " + ", ".join(parts)


def train(man: TrainManifest, progress: bool = False) -> dict[str, Any]:
    """Train, validate, save ``<out>.safetensors`` + ``<out>.json``; returns the model card."""
    import lightning as L
    import torch

    from orbitml import __version__
    from orbitml.nn.cosmic_unet import save_model
    from orbitml.nn.lightning_cosmic import CosmicSegmenter

    torch.set_num_threads(man.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    rng = np.random.default_rng(man.seed)
    bases = [base_from_frame(p, man.hdu) for p in man.frames]
    bases += simulated_bases(man.simulated, man.sim_shape, rng, man.sky_fwhm_px, man.noise_mismatch)
    bases += mission_bases(man.mission, man.sim_shape, rng)
    kw = dict(normalisation=man.normalisation, tdi_streak_px=man.tdi_streak_px,
              ignore_saturated=man.ignore_saturated)
    train_d = make_patches(bases, man.n_patches, man.patch, man.n_hits, rng, man.pixel_size_um, man.thickness_um,
                           **kw)
    val_d = make_patches(bases, man.n_val, man.patch, man.n_hits, np.random.default_rng(man.seed + 10_007),
                         man.pixel_size_um, man.thickness_um, **kw)
    steps = man.epochs * -(-man.n_patches // man.batch_size)
    L.seed_everything(man.seed, workers=True, verbose=False)
    module = CosmicSegmenter(base=man.base, lr=man.lr, pos_weight=man.pos_weight, max_steps=steps,
                             levels=man.levels)
    trainer = L.Trainer(max_epochs=man.epochs, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=progress,
                        deterministic=True, num_sanity_val_steps=0, max_steps=steps)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(LeafSpec|does not have many workers|litlogger).*")
        trainer.fit(module, _loader(train_d, man.batch_size, True, man.seed),
                    _loader(val_d, man.batch_size, False, man.seed))
    metrics = validate(module.net, val_d, man.target_fpr, kinds=[b.kind for b in bases])
    n_ep = max(len(module.train_losses) // max(man.epochs, 1), 1)
    card = {
        "name": man.name or Path(man.out).name, "task": "cosmic-ray pixel segmentation",
        "description": man.description, "instruments": list(man.instruments), "orbitml_version": __version__,
        "normalisation": {"kind": man.normalisation, "softening": SOFTENING,
                          "formula": NORMALISATIONS[man.normalisation],
                          "sky": "block median (32 px) unless the file provides one"},
        "threshold": metrics["threshold"], "target_fpr": man.target_fpr,
        "training_data": {"simulated": True, "simulated_description": training_description(man),
                          "real_frames": [Path(f).name for f in man.frames], "simulated_frames": man.simulated,
                          "mission_frames": dict(sorted(man.mission.items())),
                          "tdi_streak_px": list(man.tdi_streak_px) if man.tdi_streak_px else None,
                          "sky_fwhm_px": list(man.sky_fwhm_px) if man.sky_fwhm_px else None,
                          "noise_mismatch": list(man.noise_mismatch) if man.noise_mismatch else None,
                          "sim_shape": list(man.sim_shape), "patches": man.n_patches, "patch": man.patch,
                          "hits_per_patch": man.n_hits, "pixel_size_um": man.pixel_size_um,
                          "thickness_um": man.thickness_um, "simulator": "orbitml.simulate.ccd"},
        "training": {"epochs": man.epochs, "batch_size": man.batch_size, "lr": man.lr,
                     "pos_weight": man.pos_weight, "seed": man.seed,
                     "first_epoch_loss": float(np.mean(module.train_losses[:n_ep])),
                     "last_epoch_loss": float(np.mean(module.train_losses[-n_ep:]))},
        "metrics": metrics,
        **module.net.config(),
    }
    save_model(module.net, man.out, card)
    from orbitml.io.provenance import write_run_info

    write_run_info(Path(man.out).parent, "orbitml cosmic train", man.model_dump(), seed=man.seed,
                   inputs=man.frames, name=f"{Path(man.out).name}.run.json")
    return card


def default_manifest(out: str | os.PathLike, quick: bool = True, frames: list[str] | None = None,
                     seed: int = 0) -> TrainManifest:
    """A small manifest for the demo and benchmarks (quick: ~10 s on 2 cores)."""
    if quick:
        return TrainManifest(frames=frames or [], simulated=3, n_patches=384, n_val=48, epochs=4,
                             batch_size=16, seed=seed, out=str(out))
    return TrainManifest(frames=frames or [], simulated=6, n_patches=2048, n_val=128, epochs=8,
                         batch_size=16, seed=seed, out=str(out))
