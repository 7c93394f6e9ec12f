"""``orbitml pan2spec ...``: predict CRISM spectral bands from single-band CTX images."""

from __future__ import annotations

from pathlib import Path

import typer

from orbitml.cli._common import console, print_json
from orbitml.cli._tiling_opts import BATCH, DEVICE, OVERWRITE, SCHEDULER, WEIGHTS, WORKERS

app = typer.Typer(help="CTX -> CRISM bands (Stepcenkov et al. 2022): build pairs, train, predict, evaluate.",
                  no_args_is_help=True)


def _notice(card_or_rec) -> None:
    n = card_or_rec.get("notice") if isinstance(card_or_rec, dict) else None
    if n:
        console.print(f"[yellow]note: {n}[/yellow]")


@app.command()
def build(
    ctx: Path = typer.Argument(..., help="Map-projected CTX image (GeoTIFF, ISIS3 cube ...)."),
    crism: Path = typer.Argument(..., help="Map-projected CRISM product (e.g. an MTRDR GeoTIFF)."),
    out: Path = typer.Option(..., "--out", help="Folder for pair folders."),
    name: str = typer.Option(None, "--name", help="Pair folder name (default: <ctx>__<crism>)."),
    bands: str = typer.Option("evc", "--bands", help="evc (592,533,442 nm), fc (2503,1500,1080 nm) or nm list."),
    wavelengths: Path = typer.Option(None, "--wavelengths", help="CRISM band-centre table (CSV, nm) when the "
                                                                  "product carries none."),
    dem: Path = typer.Option(None, "--dem", help="Optional DEM resampled onto the pair grid as a second input."),
    no_align: bool = typer.Option(False, "--no-align", help="Skip the phase-correlation refinement."),
    windows: int = typer.Option(3, "--windows", min=1, help="Local alignment windows per side."),
    min_valid_pixels: int = typer.Option(1024, "--min-valid-pixels", min=1),
    overwrite: bool = OVERWRITE,
) -> None:
    """Build one co-registered CTX / CRISM pair folder (ctx.tif, crism.tif, valid.tif, stats.json)."""
    from orbitml.io.provenance import write_run_info
    from orbitml.pan2spec.pairs import build_pair, parse_bands

    pair = build_pair(ctx, crism, out, name=name, bands=parse_bands(bands), wavelengths=wavelengths, dem_path=dem,
                      align=not no_align, n_windows=windows, min_valid_pixels=min_valid_pixels,
                      overwrite=overwrite)
    q = pair.stats["quality"]
    msg = f"pair {pair.folder}: {pair.stats['shape'][0]} x {pair.stats['shape'][1]} px, " \
          f"{pair.stats['valid_fraction']:.0%} valid, bands {pair.stats['wavelengths_nm']} nm"
    if "global_shift_px" in q:
        msg += (f"; shift {q['global_shift_px'][0]:+.2f}, {q['global_shift_px'][1]:+.2f} px (CTX), "
                f"{q['n_windows_used']} local windows, residual {q['residual_shift_px']:.2f} px")
    console.print(msg)
    write_run_info(pair.folder, "orbitml pan2spec build", {"ctx": str(ctx), "crism": str(crism), "bands": bands,
                                                         "wavelengths": str(wavelengths) if wavelengths else None,
                                                         "dem": str(dem) if dem else None, "align": not no_align},
                   inputs=[str(ctx), str(crism)] + ([str(dem)] if dem else []))


@app.command()
def train(manifest: Path = typer.Argument(..., help="Training manifest (YAML).")) -> None:
    """Train a model on pair folders (see docs/pan2spec.md for the manifest)."""
    from orbitml.pan2spec.train import load_train_manifest
    from orbitml.pan2spec.train import train as run

    run(load_train_manifest(manifest), manifest_path=manifest, console=console)


@app.command()
def predict(
    ctx: list[Path] = typer.Argument(..., help="CTX image(s)."),
    model: Path = typer.Option(..., "--model", help="model.safetensors (with model.json beside it)."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    stride_div: int = typer.Option(2, "--stride-div", help="s: tiles every tile/s px (1, 2 or 3)."),
    tile: int = typer.Option(None, "--tile", help="Tile size (default: the training patch size)."),
    dem: Path = typer.Option(None, "--dem", help="DEM for a CTX + DEM model."),
    bands: str = typer.Option(None, "--bands", help="Expected bands (evc, fc or nm list); refused if the "
                                                    "model predicts others."),
    weights: str = WEIGHTS,
    decode: str = typer.Option(None, "--decode", help="Classification: expectation or argmax."),
    batch_size: int = BATCH,
    device: str = DEVICE,
    workers: int = WORKERS,
    scheduler: str = SCHEDULER,
    overwrite: bool = OVERWRITE,
) -> None:
    """Predict CRISM bands for CTX images: GeoTIFF + browse PNG (+ confidence for classifiers)."""
    from orbitml.nn.weights import simulated_notice
    from orbitml.pan2spec.pairs import parse_bands
    from orbitml.pan2spec.predict import load_model, predict_ctx, predict_many

    want = list(parse_bands(bands)) if bands else None
    kw = dict(stride_div=stride_div, tile=tile, dem=dem, bands=want, weights=weights, batch_size=batch_size,
              device=device, decode=decode)
    if len(ctx) > 1 or workers or scheduler:
        recs = predict_many([str(p) for p in ctx], model, out, workers=workers, scheduler=scheduler,
                            overwrite=overwrite, **kw)
        done = sum(r["status"] == "done" for r in recs)
        console.print(f"{done} predicted, {sum(r['status'] == 'skipped' for r in recs)} skipped, "
                      f"{sum(r['status'] == 'failed' for r in recs)} failed -> {out}")
        for r in recs:
            if r["status"] == "failed":
                console.print(f"  {r['input']}: {r['error']}")
        _notice({"notice": simulated_notice(load_model(model).card)})
        return
    rec = predict_ctx(ctx[0], model, out, overwrite=overwrite, **kw)
    console.print(f"prediction: {rec['prediction']} ({rec['units']})")
    if rec["confidence"]:
        console.print(f"confidence: {rec['confidence']}")
    console.print(f"browse: {rec['browse']}")
    for n in rec["notes"]:
        console.print(f"note: {n}")
    _notice(rec)


@app.command()
def evaluate(
    pairs: list[Path] = typer.Argument(..., help="Held-out pair folders."),
    model: Path = typer.Option(..., "--model", help="model.safetensors"),
    out: Path = typer.Option(..., "--out", help="Folder for metrics.json / metrics.csv / report.html."),
    stride_div: int = typer.Option(2, "--stride-div"),
    weights: str = WEIGHTS,
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON on stdout."),
) -> None:
    """RMSE, cosine and Pearson per image for the network and the pixel-wise albedo baseline."""
    from orbitml.pan2spec.evaluate import evaluate_pairs

    res = evaluate_pairs(model, [str(p) for p in pairs], out, stride_div=stride_div, weights=weights)
    if as_json:
        print_json(res)
    console.print(f"units: {res['units']}")
    console.print(f"{'':18s} {'RMSE':>7s} {'cosine':>7s} {'Pearson':>7s}")
    for who, m in res["mean"].items():
        console.print(f"{who:18s} {m['rmse']:7.3f} {m['cosine']:7.3f} {m['pearson']:7.3f}")
    console.print(f"report: {Path(out) / 'report.html'}")
    _notice(res)


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="Folder for raw products, pairs and a training manifest."),
    n_pairs: int = typer.Option(4, "--pairs", min=3, help="Number of simulated pairs (>= 3: train/val/test)."),
    size: int = typer.Option(384, "--size", min=96, help="CTX image side in pixels."),
    seed: int = typer.Option(0, "--seed"),
    quick_model: bool = typer.Option(True, "--small-model/--paper-model",
                                     help="Manifest with a small encoder (CPU) or Unet + EfficientNet-B0."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Simulate CTX / CRISM pairs, build them, and write a training manifest to try the workflow."""
    from orbitml.pan2spec.simulated import simulate_dataset

    res = simulate_dataset(out, n_pairs=n_pairs, size=size, seed=seed, small_model=quick_model,
                           overwrite=overwrite)
    console.print(f"{n_pairs} simulated pairs in {res['pairs_dir']}; manifest {res['manifest']}")
    console.print(f"next: orbitml pan2spec train {res['manifest']}")
