"""Predict CRISM bands for whole CTX images through the tiling engine.

Tiles of the training patch size every ``tile / s`` px (``s`` = 1, 2, 3), blended with Gaussian
weights (Stepcenkov et al. 2022 Eq. 3), reflection padding at the image edges (the engine) and
inside the network.  Products, beside each other in ``out_dir``::

    <stem>_pan2spec.tif      predicted bands (wavelength tags, CTX CRS and transform, units tag)
    <stem>_confidence.tif    classification models: peak probability and normalised entropy
    <stem>_browse.png        per-channel 3-sigma stretch of the first three bands (R, G, B)
    <stem>_pan2spec.run.json provenance (model card digest, parameters, versions)

A model trained on simulated pairs says so in every product (GeoTIFF tag ``ORBITML_NOTICE``, the
run record and the console).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from orbitml.errors import OrbitmlInputError
from orbitml.nn.pan2spec import Bins, Pan2SpecNet, build_net, confidence
from orbitml.pan2spec.normalise import Normaliser

__all__ = ["Model", "Pan2SpecPredictor", "load_model", "image_stats", "predict_ctx", "predict_many"]

ARCH = "pan2spec"


@dataclass
class Model:
    net: Pan2SpecNet
    card: dict[str, Any]
    path: Path

    @property
    def normaliser(self) -> Normaliser:
        return Normaliser.from_card(self.card["normalisation"])

    @property
    def bins(self) -> Bins | None:
        b = self.card.get("bins")
        return Bins(b["n"], b["r"], b["spacing"]) if self.card["task"] == "classification" else None

    @property
    def band_names(self) -> list[str]:
        return [f"{w:.1f} nm" for w in self.card["bands_nm"]]


def load_model(path: str | os.PathLike) -> Model:
    from orbitml.nn.weights import load_state_into, load_weights, weights_path

    state, card = load_weights(path, architecture=ARCH)
    try:
        net = build_net(card)
    except KeyError as exc:
        raise OrbitmlInputError(f"model card lacks {exc}", weights_path(path)) from None
    return Model(load_state_into(net, state, path), card, weights_path(path))


class Pan2SpecPredictor(nn.Module):
    """Tile function for :func:`orbitml.tiling.predict`: raw input (NaN at invalid pixels) ->
    predicted bands in the model's output units (+ peak probability and entropy for classifiers)."""

    def __init__(self, net: Pan2SpecNet, mode: str, input_stats=None, target_stats=None, bins: Bins | None = None,
                 decode: str = "expectation", n_in: int = 1):
        super().__init__()
        self.net, self.mode, self.bins, self.decode = net, mode, bins, decode

        def vec(stats, key, default, n):
            return torch.tensor([s[key] for s in stats] if stats else [default] * n, dtype=torch.float32)

        self.register_buffer("in_mean", vec(input_stats, "mean", 0.0, n_in))
        self.register_buffer("in_std", vec(input_stats, "std", 1.0, n_in).clamp_min(1e-12))
        self.register_buffer("t_mean", vec(target_stats, "mean", 0.0, net.n_bands))
        self.register_buffer("t_std", vec(target_stats, "std", 1.0, net.n_bands))

    @property
    def n_out(self) -> int:
        return self.net.n_bands + (2 if self.net.task == "classification" else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        valid = torch.isfinite(x).all(dim=1, keepdim=True)
        x0 = torch.where(valid, x, torch.zeros_like(x))
        if self.mode == "patch":
            m = valid.to(x.dtype)
            cnt = m.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
            mu = (x0 * m).sum(dim=(2, 3), keepdim=True) / cnt
            sd = torch.sqrt(((x0 - mu) ** 2 * m).sum(dim=(2, 3), keepdim=True) / cnt).clamp_min(1e-12)
            xn = (x0 - mu) / sd
        elif self.mode in ("global", "image"):
            xn = (x0 - self.in_mean[None, :, None, None]) / self.in_std[None, :, None, None]
        else:
            xn = x0
        xn = torch.where(valid, xn, torch.zeros_like(xn))
        out = self.net(xn)
        extra = []
        if self.net.task == "classification":
            probs = out.softmax(dim=1)
            rec = self.bins.decode(probs, self.decode)
            peak, ent = confidence(probs)
            extra = [peak[:, None], ent[:, None]]
        else:
            rec = out
        if self.mode == "global":
            rec = rec * self.t_std[None, :, None, None] + self.t_mean[None, :, None, None]
        return torch.cat([rec, *extra], dim=1)


def image_stats(source, rows: int = 512) -> list[dict[str, float]]:
    """Mean and std per band over the valid pixels of a tiling source, read in strips of ``rows``."""
    from orbitml.tiling.sources import invalid_mask

    n = np.zeros(source.count)
    s1 = np.zeros(source.count)
    s2 = np.zeros(source.count)
    for r0 in range(0, source.height, rows):
        block = source.read(r0, min(source.height, r0 + rows)).astype(np.float64)
        ok = ~invalid_mask(block, source.nodata)
        for c in range(source.count):
            v = block[c][ok]
            n[c] += v.size
            s1[c] += v.sum()
            s2[c] += (v * v).sum()
    if not n.any():
        raise OrbitmlInputError("image has no valid pixels", getattr(source, "name", None))
    mu = s1 / np.maximum(n, 1)
    sd = np.sqrt(np.maximum(s2 / np.maximum(n, 1) - mu**2, 0.0))
    return [{"mean": float(a), "std": float(b)} for a, b in zip(mu, sd, strict=True)]


def make_predictor(model: Model, source=None, decode: str | None = None) -> Pan2SpecPredictor:
    norm = model.normaliser
    card = model.card
    if norm.mode == "global":
        inp, tgt = norm.input_stats, norm.target_stats
    elif norm.mode == "image":
        inp, tgt = image_stats(source), None
    else:
        inp, tgt = None, None
    return Pan2SpecPredictor(model.net, norm.mode, inp, tgt, model.bins, decode or card.get("decode", "expectation"),
                             n_in=int(card["in_channels"]))


def _input_source(ctx_path: Path, model: Model, dem_path: str | os.PathLike | None):
    from orbitml.tiling import open_source

    src = open_source(ctx_path)
    if src.count != 1:
        raise OrbitmlInputError(f"a CTX image has one band; this file has {src.count}", ctx_path)
    need_dem = int(model.card["in_channels"]) == 2
    if need_dem and dem_path is None:
        raise OrbitmlInputError("this model takes CTX + DEM (in_channels 2): pass --dem", model.path)
    if not need_dem and dem_path is not None:
        raise OrbitmlInputError("this model takes CTX only (in_channels 1); it was not trained with a DEM",
                                model.path)
    if not need_dem:
        return src
    from rasterio.warp import Resampling, reproject

    from orbitml.io import open_scene
    from orbitml.scene import make_scene

    if src.crs is None:
        raise OrbitmlInputError("a DEM can only be resampled onto a map-projected CTX image", ctx_path)
    ctx = src.read(0, src.height).astype(np.float32)
    if src.nodata is not None:
        ctx[ctx == src.nodata] = np.nan
    dem = open_scene(dem_path)
    zd = np.full((1, src.height, src.width), np.nan, np.float32)
    dsrc = np.asarray(dem.values[:1], np.float32)
    if dem.rio.nodata is not None:
        dsrc[dsrc == dem.rio.nodata] = np.nan
    reproject(dsrc, zd, src_transform=dem.rio.transform(), src_crs=dem.rio.crs, dst_transform=src.transform,
              dst_crs=src.crs, resampling=Resampling.bilinear, src_nodata=np.nan, dst_nodata=np.nan)
    return open_source(make_scene(np.concatenate([ctx, zd]), crs=src.crs, transform=src.transform, nodata=np.nan))


def _tags(model: Model) -> dict[str, str]:
    from orbitml.nn.weights import simulated_notice

    card = model.card
    tags = {"ORBITML_UNITS": card["normalisation"]["output_units"], "ORBITML_MODEL": str(model.path.name),
            "ORBITML_MODEL_SHA256": str(card.get("weights_sha256", "")),
            "ORBITML_NORMALISATION": card["normalisation"]["mode"], "ORBITML_TASK": card["task"]}
    notice = simulated_notice(card)
    if notice:
        tags["ORBITML_NOTICE"] = notice
    return tags


def _split(combined: Path, outputs: list[tuple[Path, list[int], list[str], list[float] | None]],
           tags: dict[str, str], overwrite: bool) -> None:
    """Copy band groups of ``combined`` into their own GeoTIFFs, block row by block row."""
    import contextlib

    import rasterio
    from rasterio.windows import Window

    from orbitml.io.atomic import atomic_path

    with rasterio.open(combined) as src:
        prof = src.profile.copy()
        for path, idx, names, wls in outputs:
            with contextlib.ExitStack() as stack:
                tmp = stack.enter_context(atomic_path(path, overwrite=overwrite))
                p = dict(prof, count=len(idx))
                with rasterio.open(tmp, "w", **p) as dst:
                    step = 256 * 4
                    for r0 in range(0, src.height, step):
                        win = Window(0, r0, src.width, min(step, src.height - r0))
                        dst.write(src.read([i + 1 for i in idx], window=win), window=win)
                    for j, name in enumerate(names):
                        dst.set_band_description(j + 1, name)
                        if wls is not None:
                            dst.update_tags(j + 1, wavelength=f"{wls[j]:.10g}", wavelength_units="nm")
                    dst.update_tags(**tags)


def browse_png(tif: Path, png: Path, max_side: int = 2048, overwrite: bool = True) -> Path:
    """Per-channel 3-sigma stretch of bands 1-3 (or band 1 in grey), decimated to ``max_side`` px."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio

    from orbitml.io.atomic import atomic_path
    from orbitml.report.figures import rgb_composite

    with rasterio.open(tif) as ds:
        k = max(1, int(np.ceil(max(ds.height, ds.width) / max_side)))
        shape = (min(3, ds.count), max(1, ds.height // k), max(1, ds.width // k))
        data = ds.read(list(range(1, shape[0] + 1)), out_shape=shape).astype(np.float64)
        if ds.nodata is not None and np.isfinite(ds.nodata):
            data[data == ds.nodata] = np.nan
    rgb = rgb_composite(data, [0, 1, 2] if data.shape[0] >= 3 else [0, 0, 0])  # fewer than 3 bands: grey
    with atomic_path(png, overwrite=overwrite) as tmp:
        plt.imsave(tmp, rgb, format="png")
    return png


def predict_ctx(ctx_path: str | os.PathLike, model: Model | str | os.PathLike, out_dir: str | os.PathLike, *,
                stride_div: int = 2, tile: int | None = None, dem: str | os.PathLike | None = None,
                bands: list[float] | None = None, weights: str = "gaussian", batch_size: int = 4,
                device: str | None = None, decode: str | None = None, overwrite: bool = False,
                progress: bool = True, workers: int | None = None) -> dict[str, Any]:
    """Predict one CTX image; returns a record with the product paths, units and notes."""
    from orbitml.io.atomic import check_writable
    from orbitml.io.provenance import write_run_info
    from orbitml.nn.weights import simulated_notice
    from orbitml.tiling import predict

    ctx_path = Path(ctx_path)
    model = model if isinstance(model, Model) else load_model(model)
    card = model.card
    if bands is not None:
        want = [round(float(b), 1) for b in bands]
        have = [round(float(b), 1) for b in card["bands_nm"]]
        if len(want) != len(have) or any(abs(a - b) > 25 for a, b in zip(want, have, strict=True)):
            raise OrbitmlInputError(f"model predicts bands {have} nm, not the {want} nm asked for", model.path)
    if stride_div not in (1, 2, 3, 4):
        raise OrbitmlInputError(f"--stride-div must be 1, 2, 3 or 4, got {stride_div}")
    tile = int(tile or card.get("patch_size", 256))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = ctx_path.stem
    pred_p, conf_p, png_p = (out_dir / f"{stem}_pan2spec.tif", out_dir / f"{stem}_confidence.tif",
                             out_dir / f"{stem}_browse.png")
    is_cls = card["task"] == "classification"
    for p in [pred_p, png_p] + ([conf_p] if is_cls else []):
        check_writable(p, overwrite)
    source = _input_source(ctx_path, model, dem)
    notes = []
    if tile > min(source.height, source.width):
        tile = min(source.height, source.width)
        notes.append(f"image smaller than the training patch: tiles of {tile} px")
    fn = make_predictor(model, source, decode)
    names = model.band_names + (["peak_probability", "normalised_entropy"] if is_cls else [])
    tags = _tags(model)
    combined = out_dir / f".{stem}.pan2spec_all.tif"
    try:
        predict(source, fn, tile=tile, stride=max(1, tile // stride_div), weights=weights, batch_size=batch_size,
                fill_value=np.nan, out=combined, out_bands=names, device=device, overwrite=True, progress=progress,
                workers=workers, tags=tags)
        nb = len(card["bands_nm"])
        groups = [(pred_p, list(range(nb)), model.band_names, [float(w) for w in card["bands_nm"]])]
        if is_cls:
            groups.append((conf_p, [nb, nb + 1], names[nb:], None))
        _split(combined, groups, tags, overwrite)
    finally:
        combined.unlink(missing_ok=True)
    browse_png(pred_p, png_p, overwrite=overwrite)
    if source.crs is None:
        notes.append("the CTX input has no map projection (camera geometry): products keep its pixel grid "
                     "and carry no CRS")
    record = {"input": str(ctx_path), "prediction": str(pred_p), "confidence": str(conf_p) if is_cls else None,
              "browse": str(png_p), "units": card["normalisation"]["output_units"], "tile": tile,
              "stride": max(1, tile // stride_div), "weights": weights, "crs": None if source.crs is None else
              source.crs.to_wkt(), "notice": simulated_notice(card), "notes": notes,
              "model": str(model.path), "model_sha256": card.get("weights_sha256")}
    write_run_info(out_dir, "orbitml pan2spec predict", record, seed=card.get("seed"), inputs=[str(ctx_path)],
                   name=f"{stem}_pan2spec.run.json")
    return record


def _predict_task(path: str, model_path: str, out_dir: str, kw: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(1)
    return predict_ctx(path, model_path, out_dir, progress=False, **kw)


def predict_many(paths: list[str | os.PathLike], model_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                 workers: int | None = None, scheduler: str | None = None, overwrite: bool = False,
                 **kwargs: Any) -> list[dict[str, Any]]:
    """Predict many CTX images, one dask task per image (``orbitml.tiling.dask_client``); resumable.

    Image-wise normalisation needs each image's own statistics, so every task runs
    :func:`predict_ctx` (which computes them and calls :func:`orbitml.tiling.predict`) rather than
    one shared tile function.  An image whose prediction exists is skipped unless ``overwrite``.
    """
    from orbitml.tiling import dask_client

    out_dir = Path(out_dir)
    stems = [Path(p).stem for p in paths]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise OrbitmlInputError(f"two inputs share the file name stem {dup!r}; their products would collide "
                                "(rename them or predict them into different folders)")
    recs, jobs = [], []
    for p in paths:
        rec = {"input": str(p), "status": "skipped", "error": ""}
        recs.append(rec)
        if (out_dir / f"{Path(p).stem}_pan2spec.tif").exists() and not overwrite:
            continue
        jobs.append(rec)
    kw = dict(kwargs, overwrite=overwrite)
    load_model(model_path)  # a bad model fails here, once, before any task starts

    def settle(rec, fut_result=None, exc=None):
        if exc is None:
            rec.update(status="done", **{k: v for k, v in fut_result.items() if k in ("prediction", "notice")})
        elif isinstance(exc, OrbitmlInputError):
            rec.update(status="failed", error=str(exc))
        else:
            raise exc

    if workers is None and scheduler is None:
        for rec in jobs:
            try:
                settle(rec, _predict_task(rec["input"], str(model_path), str(out_dir), kw))
            except OrbitmlInputError as exc:
                settle(rec, exc=exc)
    else:
        from distributed import as_completed

        with dask_client(workers, scheduler) as client:
            futs = {client.submit(_predict_task, r["input"], str(model_path), str(out_dir), kw, pure=False): r
                    for r in jobs}
            for fut in as_completed(futs):
                exc = fut.exception()
                settle(futs[fut], None if exc else fut.result(), exc)
    (out_dir / "predict_many.json").write_text(json.dumps(recs, indent=2))
    return recs
