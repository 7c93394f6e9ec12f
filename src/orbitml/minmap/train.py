"""``orbitml minmap train``: everything is checked first, then patches are synthesised and the CNN trained.

:func:`prepare` reads the scene, mask and libraries, chooses the bands, ``R`` and the projection
and synthesises the patches; every user mistake surfaces there, before anything is written.
:func:`train` then trains through :func:`orbitml.nn.training.fit` in a temporary folder that
replaces ``out`` only when the model and its card are complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orbitml import __version__
from orbitml.errors import OrbitmlInputError
from orbitml.minmap.data import (
    augment_pools,
    calibrate_rejection,
    load_class_libraries,
    noise_sd,
    resample_classes,
    scene_bands,
    synthesise_patches,
)
from orbitml.minmap.manifest import MinmapManifest
from orbitml.minmap.model import ARCHITECTURE, choose_dims, fit_projection

__all__ = ["Prepared", "prepare", "train", "read_mask", "sample_pixels", "SIMULATED_TEXT"]

SIMULATED_TEXT = "simulated spectral libraries"
MAX_PIXELS = 40_000


def read_mask(path: str | os.PathLike | None, scene, what: str = "mask") -> np.ndarray | None:
    """Valid-pixel mask (non-zero = use) on the scene's grid; shape and CRS are checked."""
    if path is None:
        return None
    m = open_on_grid(path, scene, what)
    vals = np.asarray(m.values[0])
    ok = np.isfinite(vals) & (vals != 0)
    if m.rio.nodata is not None and np.isfinite(m.rio.nodata):
        ok &= vals != m.rio.nodata
    return ok


def open_on_grid(path: str | os.PathLike, scene, what: str):
    """A one-band raster (mask, labels) that must lie on the scene's grid: band count, size, CRS and
    transform are checked before its pixels are read."""
    from orbitml.io import open_scene

    m = open_scene(path, chunks={"band": -1, "y": 1024, "x": -1})
    if m.sizes["band"] != 1:
        raise OrbitmlInputError(f"{what} must have one band, found {m.sizes['band']}", path)
    if (m.sizes["y"], m.sizes["x"]) != (scene.sizes["y"], scene.sizes["x"]):
        raise OrbitmlInputError(f"{what} is {m.sizes['y']} x {m.sizes['x']} pixels but the scene is "
                                f"{scene.sizes['y']} x {scene.sizes['x']}", path)
    c1, c2 = m.rio.crs, scene.rio.crs
    if c1 is not None and c2 is not None and c1 != c2:
        raise OrbitmlInputError(f"{what} CRS ({c1}) differs from the scene's ({c2})", path)
    if c1 is not None and c2 is not None and not np.allclose(tuple(m.rio.transform())[:6],
                                                             tuple(scene.rio.transform())[:6]):
        raise OrbitmlInputError(f"{what} grid (transform) differs from the scene's", path)
    return m


def sample_pixels(scene, band_idx: np.ndarray, mask: np.ndarray | None, path: Any,
                  max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Valid scene pixels on the model bands, subsampled on a regular grid to at most ``max_pixels``."""
    h, w = scene.sizes["y"], scene.sizes["x"]
    step = max(1, int(np.ceil(np.sqrt(h * w / max_pixels))))
    sub = scene.isel(band=band_idx, y=slice(None, None, step), x=slice(None, None, step))
    X = np.asarray(sub.values, dtype=np.float64).reshape(band_idx.size, -1).T
    ok = np.isfinite(X).all(axis=1)
    nd = scene.rio.nodata
    if nd is not None and np.isfinite(nd):
        ok &= ~(X == nd).any(axis=1)
    if mask is not None:
        ok &= mask[::step, ::step].ravel()
    if ok.sum() < 2:
        raise OrbitmlInputError(f"only {int(ok.sum())} valid pixels in the scene (after the mask)", path)
    return X[ok]


@dataclass
class Prepared:
    man: MinmapManifest
    classes: list[str]
    band_idx: np.ndarray
    wavelength: np.ndarray
    fwhm: np.ndarray
    class_means: np.ndarray
    W: np.ndarray
    b: np.ndarray
    R: int
    train: tuple[np.ndarray, np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray, np.ndarray]
    card: dict[str, Any] = field(default_factory=dict)
    scene_val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # labelled scene pixels held out


def prepare(man: MinmapManifest, manifest_path: Any = None, log=print) -> Prepared:
    from orbitml.io import open_scene
    from orbitml.minmap.run import SCENE_CHUNKS

    scene = open_scene(man.scene, chunks=SCENE_CHUNKS)  # sampled, reduced and cut into patches by windows
    mask = read_mask(man.mask, scene)
    idx, wl, fw, fw_note = scene_bands(scene, man.bands.remove_nm, man.bands.keep_nm, man.scene)
    libs, sources = load_class_libraries(man.classes, man.library_dir)
    names = list(libs)
    labels = split = None
    if man.labels is not None:  # checked before any work, like the mask
        from orbitml.minmap.labels import block_split, read_labels

        labels = read_labels(man.labels.raster, scene, names)
        split = block_split(labels, man.labels.block, man.labels.val_fraction, man.network.patch // 2,
                            man.seed + 4, man.labels.max_per_class, man.labels.raster)
    spectra, dropped = resample_classes(libs, wl, fw, sources)
    K = len(names)
    means = np.stack([spectra[n].mean(axis=0) for n in names])
    Xs = sample_pixels(scene, idx, mask, man.scene)
    pools = augment_pools(spectra, wl, man.augment, man.seed)
    R, rinfo = choose_dims(Xs, K, man.projection, fallback=np.vstack(pools))
    W, b, pinfo = fit_projection(Xs, pools, R, man.projection.basis, man.seed)
    log(f"{K} classes, {idx.size} bands, R = {R} ({rinfo['rule']})")
    pools_z = [p.astype(np.float64) @ W for p in pools]
    noise = None
    if man.patches.snr_db is not None:
        sd = noise_sd(pools, man.patches.snr_db)
        C = sd ** 2 * (W.T @ W)
        noise = np.linalg.cholesky(C + 1e-12 * np.trace(C) / R * np.eye(R))
    P = man.network.patch
    tr = synthesise_patches(pools_z, b, man.patches.n_train, P, man.patches, noise, man.seed + 1)
    va = synthesise_patches(pools_z, b, man.patches.n_val, P, man.patches, noise, man.seed + 2)
    scene_val, label_info = None, None
    if split is not None:
        from orbitml.minmap.labels import scene_patches

        s_tr = scene_patches(scene, idx, W, b, split.train, labels, P, mask, K)
        s_va = scene_patches(scene, idx, W, b, split.val, labels, P, mask, K)
        if s_tr[1].size == 0 or s_va[1].size == 0:
            raise OrbitmlInputError("no valid labelled pixel in the training or the validation blocks",
                                    man.labels.raster)
        tr = tuple(np.concatenate([a, c]) for a, c in zip(tr, s_tr, strict=True))
        va = tuple(np.concatenate([a, c]) for a, c in zip(va, s_va, strict=True))
        scene_val = s_va

        def per_class(y):
            return {n: int((y == i).sum()) for i, n in enumerate(names)}

        label_info = {"raster": man.labels.raster, "block": man.labels.block,
                      "val_fraction": man.labels.val_fraction, "max_per_class": man.labels.max_per_class,
                      "n_blocks": split.n_blocks, "val_blocks": split.val_blocks,
                      "dropped_near_validation": split.dropped_near_val,
                      "n_train": per_class(s_tr[1]), "n_val": per_class(s_va[1]),
                      "split": "whole blocks held out for validation; training pixels whose patch reaches a "
                               "validation block dropped; abundance loss not applied (no abundance labels)"}
        log(f"labelled scene pixels: {s_tr[1].size} training, {s_va[1].size} validation "
            f"({split.val_blocks} of {split.n_blocks} blocks of {man.labels.block} px held out)")
        missing = [n for n, c in label_info["n_train"].items() if c == 0]
        if missing:
            log(f"NOTE: no labelled training pixel for {', '.join(missing)} (libraries only)")
    simulated = bool(man.simulated)
    card = {
        "architecture": ARCHITECTURE,
        "task": "mineral mapping: class map and abundances from spectral libraries",
        "orbitml_version": __version__,
        "config": {"n_bands": int(idx.size), "n_dims": int(R), "n_classes": K, "patch": P,
                   "width": man.network.width, "c3": man.network.c3, "head": man.network.head},
        "classes": names,
        "class_values": {"Unclassified": 0, **{n: i + 1 for i, n in enumerate(names)}},
        "threshold": man.threshold,
        "rejection": calibrate_rejection(pools, means, man.patches, man.seed + 3),
        "bands": {"wavelength_nm": [float(v) for v in wl], "fwhm_nm": [float(v) for v in fw],
                  "scene_band_indices": [int(i) for i in idx], "removed_nm": [list(r) for r in man.bands.remove_nm],
                  "keep_nm": None if man.bands.keep_nm is None else list(man.bands.keep_nm), "fwhm_source": fw_note,
                  "resampling": "Gaussian spectral response from band centres and FWHM"},
        "projection": {**pinfo, **rinfo},
        "training_data": {
            "simulated": simulated,
            "simulated_description": SIMULATED_TEXT if simulated else None,
            "libraries": sources,
            "n_spectra": {n: int(spectra[n].shape[0]) for n in names},
            "dropped_spectra_missing_bands": dropped,
            "augment": man.augment.model_dump(mode="json"),
            "patches": man.patches.model_dump(mode="json"),
            "scene_for_projection": man.scene,
            "note": "patches synthesised from augmented library spectra in smooth abundance fields"
                    + ("; plus labelled scene pixels" if label_info else "; no labelled scene pixels"),
            "scene_labels": label_info,
        },
        "seed": man.seed,
    }
    return Prepared(man, names, idx, wl, fw, means, W, b, R, tr, va, card, scene_val)


def _loaders(prep: Prepared):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    def ds(t):
        return TensorDataset(torch.from_numpy(t[0]), torch.from_numpy(t[1]), torch.from_numpy(t[2]))

    g = torch.Generator().manual_seed(prep.man.seed)
    bs = prep.man.training.batch_size
    return (DataLoader(ds(prep.train), batch_size=bs, shuffle=True, generator=g, drop_last=len(prep.train[1]) > bs),
            DataLoader(ds(prep.val), batch_size=max(bs, 64)))


def _accuracy(net, data, batch: int = 256) -> float:
    import torch

    X, y, _ = data
    hits = 0
    with torch.inference_mode():
        for s in range(0, y.size, batch):
            logits, _ab = net(torch.from_numpy(X[s:s + batch]))
            hits += int((logits[:, :, 0, 0].argmax(1).numpy() == y[s:s + batch]).sum())
    return hits / max(1, y.size)


def train(man: MinmapManifest, manifest_path: Any = None, log=print) -> Path:
    """Train and write ``out``: model.safetensors + model.json, training_log.csv, checkpoints, manifest, run.json."""
    import torch

    from orbitml.io.manifest import write_manifest
    from orbitml.io.provenance import write_run_info
    from orbitml.minmap.model import build_model
    from orbitml.nn.lightning_minmap import AccuracyLossStop, MinmapLightning
    from orbitml.nn.training import fit, resolve_device
    from orbitml.nn.weights import save_weights

    device = resolve_device(man.device)  # a missing GPU is an error before any work
    if man.training.threads:
        torch.set_num_threads(int(man.training.threads))
    prep = prepare(man, manifest_path, log)
    if man.simulated:
        log(f"NOTE: trained on {SIMULATED_TEXT}: not validated on real observations")
    torch.manual_seed(man.seed)  # the initial weights: seeded like everything after them
    model = build_model(prep.card["config"])
    with torch.no_grad():
        model.proj_weight.copy_(torch.from_numpy(prep.W.astype(np.float32)))
        model.proj_bias.copy_(torch.from_numpy(prep.b.astype(np.float32)))
        model.class_means.copy_(torch.from_numpy(prep.class_means.astype(np.float32)))
    train_dl, val_dl = _loaders(prep)
    steps = man.training.epochs * len(train_dl)
    lm = MinmapLightning(model.net, lr=man.training.lr, abundance_weight=man.training.abundance_weight,
                         focal_gamma=man.training.focal_gamma, max_steps=steps)
    stop = AccuracyLossStop(man.training.stopping.min_accuracy, man.training.stopping.max_loss)
    from orbitml.io.atomic import atomic_path

    out = Path(man.out)
    with atomic_path(out, overwrite=True) as tmp:  # a folder that replaces `out` only when complete
        history = fit(lm, train_dl, val_dl, out_dir=tmp, max_epochs=man.training.epochs, seed=man.seed,
                      device=device, progress=man.progress,
                      callbacks=[stop] if man.training.stopping.enabled else None)
        last = history[-1] if history else {}
        prep.card["metrics"] = {k: float(v) for k, v in last.items() if k not in ("epoch", "step")}
        prep.card["training"] = {"epochs_run": len(history), "max_epochs": man.training.epochs,
                                 "stopped_by_rule": stop.stopped_epoch is not None,
                                 "stopping_rule": man.training.stopping.model_dump(mode="json"),
                                 "device": device, "n_train_patches": int(prep.train[1].size),
                                 "n_val_patches": int(prep.val[1].size)}
        model.net = lm.net.cpu().eval()
        if prep.scene_val is not None:  # the honest number: held-out blocks of the scene itself
            prep.card["metrics"]["scene_val_acc"] = _accuracy(model.net, prep.scene_val)
            log(f"accuracy on the held-out labelled scene blocks: {prep.card['metrics']['scene_val_acc']:.3f} "
                f"({prep.scene_val[1].size} pixels)")
        save_weights(model, tmp / "model.safetensors", prep.card)
        write_manifest(man, tmp / "manifest.yaml", extra={"orbitml_version": __version__})
        write_run_info(tmp, "orbitml minmap train", man.model_dump(mode="json"), seed=man.seed,
                       inputs=[man.scene, *prep.card["training_data"]["libraries"].values(),
                               *([man.labels.raster] if man.labels else [])])
    acc = prep.card["metrics"].get("val_acc", float("nan"))
    log(f"model written to {out} ({len(history)} epochs, val acc {acc:.3f})")
    return out
