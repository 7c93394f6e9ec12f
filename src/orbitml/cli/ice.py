"""``orbitml ice ...``: find small water-ice patches in HiRISE images (chunk, simulate, train, scan, evaluate)."""

from __future__ import annotations

from pathlib import Path

import typer

from orbitml.cli._common import console
from orbitml.errors import OrbitmlInputError

app = typer.Typer(help="Water-ice patches in HiRISE images: chunk, simulate, train, scan, evaluate.",
                  no_args_is_help=True)


def _expand(images: list[str]) -> list[str]:
    """Files as given; folders expand to the image files inside them (sorted)."""
    from orbitml.ice.chunks import IMAGE_SUFFIXES

    out = []
    for s in images:
        p = Path(s)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES
                           and not f.stem.endswith("_truth"))
            # an RDR's JP2 and its LBL are one product: keep the label
            labels = {Path(f).stem for f in found if f.lower().endswith(".lbl")}
            out += [f for f in found if not (f.lower().endswith(".jp2") and Path(f).stem in labels)]
        else:
            out.append(s)
    return out


@app.command("chunk")
def chunk(
    image: Path = typer.Argument(..., help="HiRISE RDR (.LBL/.JP2), EDR .IMG, ISIS3 .cub or GeoTIFF."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    size: int = typer.Option(1024, "--size", help="Chunk size in px (the paper: 1024)."),
    overlap: int = typer.Option(None, "--overlap", help="Overlap in px (default: half a chunk; 0 = the paper's grid)."),
    black: str = typer.Option("any", "--black-policy", help="any (drop chunks with any black pixel, the paper), "
                              "keep, a fraction (e.g. 0.05) or center:C."),
    write_chunks: bool = typer.Option(False, "--write-chunks/--no-write-chunks",
                                      help="Also write every kept chunk as a PNG (for labelling)."),
) -> None:
    """Cut one image into chunks: <stem>_chunks.csv and .geojson (windows, footprints in the product CRS)."""
    from orbitml.ice.chunks import chunk_index, open_image, write_chunk_images, write_chunk_index
    from orbitml.ice.prep import ChunkSettings
    from orbitml.io.provenance import write_run_info

    st = ChunkSettings(chunk=size, input_size=size, overlap=overlap, black_policy=black)
    src = open_image(image)
    index = chunk_index(src, st)
    stem = Path(image).stem
    paths = write_chunk_index(index, out, stem)
    n_png = len(write_chunk_images(index, out / "chunks", stem)) if write_chunks else 0
    write_run_info(out, "orbitml ice chunk", {"size": size, "overlap": st.overlap, "black_policy": st.black_policy,
                                              "crs_wkt": None if index.crs is None else index.crs.to_wkt()},
                   inputs=[str(image)], name=f"{stem}_chunks.run.json")
    kept = len(index.kept)
    console.print(f"{Path(image).name}: {src.height} x {src.width} px, {len(index)} chunks of {size} px "
                  f"(overlap {st.overlap}), {kept} kept, {len(index) - kept} dropped by the black policy; "
                  f"wrote {paths['csv'].name}, {paths['geojson'].name}" + (f", {n_png} PNG" if n_png else ""))


@app.command("simulate")
def simulate(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    n_train: int = typer.Option(12, "--n-train", help="Training images."),
    n_heldout: int = typer.Option(12, "--n-heldout", help="Held-out images (hot-pixel and cut-patch distractors)."),
    size: int = typer.Option(512, "--image-size", help="Image height and width in px."),
    chunk_px: int = typer.Option(128, "--chunk", help="Chunk size in px."),
    input_size: int = typer.Option(64, "--input-size", help="Network input size in px."),
    epochs: int = typer.Option(8, "--epochs", help="Epochs written into the manifests."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Simulated HiRISE-like images + truth masks + chunk labels + train manifests (train.yaml, train_paper.yaml)."""
    from orbitml.ice.simdata import simulate_dataset

    info = simulate_dataset(out, n_train=n_train, n_heldout=n_heldout, shape=(size, size), chunk=chunk_px,
                            input_size=input_size, seed=seed, epochs=epochs)
    console.print(f"wrote {info['images']} simulated images, {info['labels']} chunk labels ({info['positives']} ice) "
                  f"and {info['manifest']} (+ train_paper.yaml) in {out}; everything here is SIMULATED")


@app.command("train")
def train(
    manifest: Path = typer.Argument(..., help="YAML manifest (labels, chunk, input_size, model, epochs, out...)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the training progress bar."),
) -> None:
    """Train a chunk classifier (small Xception or a timm model) on labelled chunks."""
    from orbitml.ice.train import load_train_manifest
    from orbitml.ice.train import train as run_train
    from orbitml.nn.weights import simulated_notice

    man = load_train_manifest(manifest)
    card = run_train(man, progress=progress, console=console)
    m = card["metrics"].get("validation_chunks") or {}
    note = simulated_notice(card)
    console.print(f"saved {man.out}.safetensors (+ .json card), {card['n_parameters']:,} parameters; validation "
                  f"chunks: precision {m.get('precision', float('nan')):.3f}, recall "
                  f"{m.get('recall', float('nan')):.3f}, ROC-AUC {m.get('roc_auc', float('nan')):.3f}")
    if note:
        console.print(f"[yellow]NOTE[/]: {note}")


@app.command("scan")
def scan(
    images: list[str] = typer.Argument(..., help="Images or folders of images."),
    model: Path = typer.Option(..., "--model", "-m", help="Model weights (.safetensors with its .json card)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    workers: int = typer.Option(1, "--workers", help="dask worker processes (one image per task)."),
    rule: str = typer.Option("auto", "--rule", help="auto | paper (any chunk > threshold) | corroborated."),
    threshold: float = typer.Option(None, "--threshold", help="Chunk probability threshold (default: card, 0.6)."),
    corroborate_threshold: float = typer.Option(None, "--corroborate-threshold",
                                                help="Threshold of the corroborating window (default: card)."),
    chunk_px: int = typer.Option(None, "--chunk", help="Expected chunk size; refused when the model's differs."),
    batch_size: int = typer.Option(16, "--batch-size"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto (in-process scan only)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Rescan images already done."),
) -> None:
    """Per-chunk ice probabilities, image-level rules, a ranking, GeoJSON/CSV, heat maps and an HTML summary."""
    from rich.progress import Progress

    from orbitml.ice.report import write_summary
    from orbitml.ice.scan import RULES, scan_many
    from orbitml.ice.train import load_model
    from orbitml.io.provenance import write_run_info
    from orbitml.nn.training import resolve_device
    from orbitml.nn.weights import simulated_notice

    if rule not in RULES:
        raise OrbitmlInputError(f"--rule must be one of {', '.join(RULES)}, got {rule!r}")
    paths = _expand(images)
    if not paths:
        raise OrbitmlInputError("no images given")
    net, card, settings = load_model(model)
    if chunk_px is not None and chunk_px != settings.chunk:
        raise OrbitmlInputError(f"model was trained on {settings.chunk} px chunks, not {chunk_px} px; scan applies "
                                "the model card's chunk size (train a model for the other size)", model)
    note = simulated_notice(card)
    if note:
        console.print(f"[yellow]NOTE[/]: {note}")
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("ice scan", total=len(paths))
        recs = scan_many(paths, model, out, workers=workers, batch_size=batch_size, rule=rule, threshold=threshold,
                         corroboration={"threshold": corroborate_threshold}, overwrite=overwrite,
                         device=resolve_device(device),
                         progress=lambda: prog.advance(task))
    for r in recs:
        if r["status"] == "failed":
            console.print(f"[yellow]skipped[/] {r['error']}")
    paths_out = write_summary(recs, out, card)
    write_run_info(out, "orbitml ice scan", {"model": str(model), "rule": rule, "threshold": threshold,
                                             "corroborate_threshold": corroborate_threshold,
                                             "workers": workers, "chunking": settings.to_card(),
                                             "failed": [r for r in recs if r["status"] == "failed"]},
                   inputs=paths, name="scan.run.json")
    done = [r for r in recs if r["status"] != "failed"]
    flagged = sum(bool(r.get("flagged")) for r in done)
    console.print(f"scanned {len(done)} image(s) ({sum(r['status'] == 'skipped' for r in recs)} already done), "
                  f"{flagged} flagged for ice; {len(recs) - len(done)} failed; summary {paths_out['csv']}")
    if not done:
        raise OrbitmlInputError(f"no image could be scanned ({len(recs)} failed)")


@app.command("evaluate")
def evaluate(
    images_csv: Path = typer.Argument(..., help="CSV: image, has_ice[, truth, split] (e.g. images.csv of "
                                                "`ice simulate`)."),
    model: Path = typer.Option(..., "--model", "-m", help="Model weights (.safetensors with its .json card)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (metrics.json, evaluate.html)."),
    split: str = typer.Option("heldout", "--split", help="Rows of this split only (when the CSV has a split column)."),
    rule: str = typer.Option("auto", "--rule", help="auto | paper | corroborated."),
    threshold: float = typer.Option(None, "--threshold"),
    corroborate_threshold: float = typer.Option(None, "--corroborate-threshold",
                                                help="Threshold of the corroborating window (default: card)."),
) -> None:
    """Chunk- and image-level precision, recall, ROC-AUC and calibration on held-out images."""
    from orbitml.ice.evaluate import evaluate as run_eval
    from orbitml.io.provenance import write_run_info

    res = run_eval(images_csv, model, out, split=split or None, rule=rule, threshold=threshold,
                   corroboration={"threshold": corroborate_threshold})
    write_run_info(out, "orbitml ice evaluate", {"model": str(model), "rule": rule, "split": split},
                   inputs=[str(images_csv)], name="evaluate.run.json")
    im = res["image_level"]
    console.print(f"images: precision {im['precision']:.3f}, recall {im['recall']:.3f}, ROC-AUC {im['roc_auc']:.3f} "
                  f"({im['tp']} TP, {im['fp']} FP, {im['fn']} FN, {im['tn']} TN)")
    if "chunk_level" in res:
        ch = res["chunk_level"]
        console.print(f"chunks: precision {ch['precision']:.3f}, recall {ch['recall']:.3f}, ROC-AUC "
                      f"{ch['roc_auc']:.3f}, Brier {ch['brier']:.4f}")
    if res.get("notice"):
        console.print(f"[yellow]NOTE[/]: {res['notice']}")
