"""Evaluation on held-out pairs: RMSE, cosine similarity and Pearson correlation, per image and per
channel, for the network and for a pixel-wise albedo baseline, with side-by-side figures.

Units: for ``image`` (and ``patch``) normalisation both prediction and truth are image-wise z-scores
per band (the truth standardised by its own valid pixels, as in the paper); for ``none`` and
``global`` they are I/F.  The baseline sees only the CTX value of each pixel (normalised like the
network's input) and maps it to each band by a cubic polynomial fitted on the training pairs: the
network's advantage over it is what morphology adds to albedo.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.pan2spec.normalise import Normaliser, standardise
from orbitml.pan2spec.pairs import Pair, load_pair

__all__ = ["metrics", "fit_baseline", "apply_baseline", "pair_arrays", "predict_pair", "evaluate_pairs"]

BASELINE_DEGREE = 3


def metrics(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> dict[str, Any]:
    """RMSE, mean per-pixel cosine similarity of the band vectors and Pearson r, overall and per channel."""
    if not valid.any():
        raise OrbitmlInputError("no valid pixels to evaluate")
    p = pred[:, valid].astype(np.float64)
    t = truth[:, valid].astype(np.float64)
    err = p - t
    rmse_c = np.sqrt((err**2).mean(axis=1))
    pear = []
    for a, b in zip(p, t, strict=True):
        sa, sb = a.std(), b.std()
        pear.append(float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb)) if sa > 0 and sb > 0 else float("nan"))
    num = (p * t).sum(axis=0)
    den = np.linalg.norm(p, axis=0) * np.linalg.norm(t, axis=0)
    cos = num[den > 0] / den[den > 0]
    return {"rmse": float(np.sqrt((err**2).mean())), "cosine": float(cos.mean()) if cos.size else float("nan"),
            "pearson": float(np.nanmean(pear)), "rmse_per_channel": rmse_c.tolist(), "pearson_per_channel": pear}


def pair_arrays(pair: Pair, use_dem: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inputs (C, H, W) with NaN at invalid, crism (S, H, W), valid)`` of a pair folder."""
    from orbitml.io._gdal import open_dataset  # the pair's files checked (truncation, VRT sources) before reading

    with open_dataset(pair.ctx) as ds:
        x = ds.read().astype(np.float32)
    with open_dataset(pair.crism) as ds:
        y = ds.read().astype(np.float32)
    with open_dataset(pair.valid) as ds:
        valid = ds.read(1).astype(bool)
    if use_dem:
        if pair.dem is None:
            raise OrbitmlInputError("the model uses a DEM channel but this pair has no dem.tif", pair.folder)
        with open_dataset(pair.dem) as ds:
            x = np.concatenate([x, ds.read().astype(np.float32)])
    valid &= np.isfinite(x).all(axis=0) & np.isfinite(y).all(axis=0)
    return x, y, valid


def truth_units(norm: Normaliser, y: np.ndarray, valid: np.ndarray, pair: Pair) -> np.ndarray:
    if norm.mode in ("image", "patch"):
        return standardise(y, valid, pair.stats["crism"])
    return np.where(valid, y, np.nan)


def _baseline_input(norm: Normaliser, x: np.ndarray, valid: np.ndarray, pair: Pair) -> np.ndarray:
    if norm.mode == "global":
        return standardise(x[:1], valid, norm.input_stats[:1])[0]
    if norm.mode == "none":
        return x[0]
    return standardise(x[:1], valid, pair.stats["ctx"])[0]


def fit_baseline(pairs: list[Pair], norm: Normaliser, max_pixels: int = 100_000, seed: int = 0) -> dict[str, Any]:
    """Per-band cubic polynomial from the (normalised) CTX value to the band, over the training pairs."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for pair in pairs:
        x, y, valid = pair_arrays(pair, False)
        xi = _baseline_input(norm, x, valid, pair)[valid]
        yi = truth_units(norm, y, valid, pair)[:, valid]
        take = rng.choice(xi.size, min(xi.size, max_pixels), replace=False)
        xs.append(xi[take])
        ys.append(yi[:, take])
    xa, ya = np.concatenate(xs), np.concatenate(ys, axis=1)
    coef = [np.polyfit(xa, yb, BASELINE_DEGREE).tolist() for yb in ya]
    return {"kind": "pixel-wise albedo polynomial", "degree": BASELINE_DEGREE, "coef": coef,
            "n_pixels": int(xa.size)}


def apply_baseline(baseline: dict[str, Any], norm: Normaliser, x: np.ndarray, valid: np.ndarray,
                   pair: Pair) -> np.ndarray:
    xi = _baseline_input(norm, x, valid, pair)
    out = np.stack([np.polyval(c, xi) for c in baseline["coef"]]).astype(np.float32)
    out[:, ~valid] = np.nan
    return out


def predict_pair(model, x: np.ndarray, stride_div: int = 2, weights: str = "gaussian",
                 batch_size: int = 8) -> np.ndarray:
    """Network output for a pair's inputs (in memory, through :func:`orbitml.tiling.predict`)."""
    from orbitml.pan2spec.predict import make_predictor
    from orbitml.scene import make_scene
    from orbitml.tiling import open_source, predict

    src = open_source(make_scene(x, nodata=np.nan))
    fn = make_predictor(model, src)
    tile = min(int(model.card.get("patch_size", 256)), *x.shape[1:])
    out = predict(src, fn, tile=tile, stride=max(1, tile // stride_div), weights=weights, fill_value=np.nan,
                  batch_size=batch_size, progress=False)
    return np.asarray(out.values, dtype=np.float32)


def _figure(x, truth, pred, conf, valid, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from orbitml.report.figures import rgb_composite, stretch_3sigma

    def rgb(a):  # fewer than 3 bands: grey
        return rgb_composite(np.where(valid, a, np.nan), [0, 1, 2] if a.shape[0] >= 3 else [0, 0, 0])

    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    axes[0].imshow(np.nan_to_num(stretch_3sigma(x[0])), cmap="gray")
    axes[0].set_title("CTX")
    axes[1].imshow(rgb(truth))
    axes[1].set_title("CRISM (truth)")
    axes[2].imshow(rgb(pred))
    axes[2].set_title("prediction")
    if conf is not None:
        im = axes[3].imshow(np.where(valid, conf, np.nan), cmap="viridis", vmin=0, vmax=1)
        axes[3].set_title("confidence (peak probability)")
    else:
        im = axes[3].imshow(np.where(valid, np.sqrt(np.mean((pred - truth) ** 2, axis=0)), np.nan), cmap="magma")
        axes[3].set_title("|error| (RMS over bands)")
    fig.colorbar(im, ax=axes[3], fraction=0.046)
    for a in axes:
        a.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def evaluate_pairs(model_path: str | os.PathLike, pair_folders: list[str | os.PathLike],
                   out_dir: str | os.PathLike | None = None, *, stride_div: int = 2, weights: str = "gaussian",
                   model=None, max_figures: int = 4) -> dict[str, Any]:
    """Metrics per image (network and baseline) and their means; writes metrics.json / .csv and report.html."""
    import json

    from orbitml.nn.weights import simulated_notice
    from orbitml.pan2spec.predict import load_model

    model = model or load_model(model_path)
    card = model.card
    norm = model.normaliser
    use_dem = int(card["in_channels"]) == 2
    baseline = card.get("baseline")
    rows, figs = [], []
    for folder in pair_folders:
        pair = load_pair(folder)
        have = [round(w, 1) for w in pair.wavelengths]
        want = [round(float(w), 1) for w in card["bands_nm"]]
        if len(have) != len(want) or any(abs(a - b) > 25 for a, b in zip(have, want, strict=True)):
            raise OrbitmlInputError(f"pair has bands {have} nm but the model predicts {want} nm", pair.folder)
        x, y, valid = pair_arrays(pair, use_dem)
        out = predict_pair(model, x, stride_div, weights)
        nb = len(want)
        pred, conf = out[:nb], (out[nb] if out.shape[0] > nb else None)
        truth = truth_units(norm, y, valid, pair)
        ok = valid & np.isfinite(pred).all(axis=0)
        m = metrics(pred, truth, ok)
        rows.append({"pair": pair.stats.get("name", pair.folder.name), "model": "network", **m})
        if baseline:
            b = apply_baseline(baseline, norm, x, valid, pair)
            rows.append({"pair": pair.stats.get("name", pair.folder.name), "model": "albedo baseline",
                         **metrics(b, truth, ok)})
        if len(figs) < max_figures:
            figs.append((f"{pair.folder.name}: CTX, truth, prediction, confidence",
                         _figure(x, truth, pred, conf, ok, pair.folder.name)))
    summary = {}
    for who in ("network", "albedo baseline"):
        rs = [r for r in rows if r["model"] == who]
        if rs:
            summary[who] = {k: float(np.mean([r[k] for r in rs])) for k in ("rmse", "cosine", "pearson")}
    result = {"units": norm.units, "per_image": rows, "mean": summary, "notice": simulated_notice(card),
              "stride_div": stride_div, "weights": weights}
    if out_dir is not None:
        from orbitml.report.html import Report

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
        flat = [{k: v for k, v in r.items() if not isinstance(v, list)} for r in rows]
        import csv

        with open(out_dir / "metrics.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(flat[0]))
            w.writeheader()
            w.writerows(flat)
        rep = Report("orbitml pan2spec evaluation")
        text = (f"Model {Path(model.path).name}: {card['model']['architecture']} / {card['model']['encoder']}, "
                f"task {card['task']}, bands {card['bands_nm']} nm, normalisation {norm.mode}. Units of the "
                f"metrics: {norm.units}. Tiles every {stride_div and 'd/' + str(stride_div)} with {weights} "
                "weights.")
        if result["notice"]:
            text += f"\n\nNOTE: {result['notice']}."
        rep.add_section("Held-out pairs", text, figures=figs,
                        tables=[("Mean over images", [{"model": k, **v} for k, v in summary.items()]),
                                ("Per image", flat)])
        rep.write(out_dir / "report.html")
    return result
