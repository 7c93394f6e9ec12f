"""``orbitml cosmic detect`` and ``orbitml cosmic train`` (no torch import at module level)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from orbitml.cli._common import console
from orbitml.errors import OrbitmlInputError


class Method(StrEnum):
    lacosmic = "lacosmic"
    unet = "unet"
    stack = "stack"


def detect(
    frames: list[str] = typer.Argument(..., help="Frames: FITS/PDS3 files, folders of them, or CSV frame lists."),
    method: Method = typer.Option(Method.lacosmic, "--method", "-m", help="Detector."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for <frame>.cosmic.fits products."),
    gain: float = typer.Option(None, "--gain", help="Gain in e-/ADU (overrides the header)."),
    read_noise: float = typer.Option(None, "--read-noise", help="Read noise in e- (overrides the header)."),
    exptime: float = typer.Option(None, "--exptime", help="Exposure time in s (overrides the header)."),
    pixel_size: float = typer.Option(None, "--pixel-size", help="Pixel pitch in um (overrides defaults)."),
    saturation: float = typer.Option(None, "--saturation", help="Saturation level in raw ADU."),
    instrument: str = typer.Option(None, "--instrument", help="Instrument defaults to use (gmos, saao1m, "
                                   "lasco-c2, lasco-c3, mdis, hirise, generic)."),
    hdu: str = typer.Option(None, "--hdu", help="FITS HDU name or index (default: SCI, else the first image)."),
    model: str = typer.Option(None, "--model", help="U-Net: a shipped model's name (see `orbitml cosmic models`) "
                              "or a .safetensors path with its .json card; default: the shipped model for the "
                              "frame's instrument."),
    threshold: float = typer.Option(None, "--threshold", help="U-Net probability threshold (default: card)."),
    engine: str = typer.Option("strips", "--engine", help="U-Net inference: strips (fast, exact) or tiling "
                               "(orbitml.tiling.predict)."),
    sigclip: float = typer.Option(4.5, "--sigclip", help="L.A.Cosmic detection limit in sigma."),
    objlim: float = typer.Option(5.0, "--objlim", help="L.A.Cosmic contrast limit against stars."),
    background: str = typer.Option("auto", "--background", help="auto | provided | median | none."),
    k: float = typer.Option(5.0, "--k", help="Stack method: threshold in sigma."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing products."),
) -> None:
    """Find cosmic-ray hits in each frame and write <out>/<frame>.cosmic.fits (SCI, CLEAN, MASK[, PROB])."""
    from rich.progress import Progress

    from orbitml.cosmic.detect import detect_lacosmic, detect_unet
    from orbitml.cosmic.ingest import frame_list, iter_frames
    from orbitml.cosmic.products import product_name, write_product
    from orbitml.io.provenance import write_run_info

    specs = frame_list(frames)
    if not specs:
        raise OrbitmlInputError("no frames given")
    if method is not Method.unet and model is not None:
        raise OrbitmlInputError("--model is only used with --method unet")
    if not overwrite:
        clash = [s.path for s in specs if (out / product_name(s.path)).exists()]
        if clash:
            raise OrbitmlInputError(f"{len(clash)} product(s) exist already, e.g. {out / product_name(clash[0])}; "
                                    "pass --overwrite to replace them")
    models: dict[Path, tuple] = {}

    def unet_for(frame):
        """The (net, card) for this frame; loaded once per model, announced with its notice once."""
        import torch

        from orbitml.cosmic.shipped import resolve_model
        from orbitml.nn.cosmic_unet import load_model
        from orbitml.nn.weights import simulated_notice

        path, why = resolve_model(model, frame.instrument)
        if path not in models:
            torch.set_num_threads(2)
            models[path] = load_model(path)
            card_ = models[path][1]
            console.print(f"using {why}: {card_.get('name', path.stem)}, threshold {card_.get('threshold', 0.5):.3g}")
            notice = simulated_notice(card_)
            if notice:
                console.print(f"[yellow]note:[/] {notice}")
        return models[path]

    if method is Method.unet and model is not None:
        from orbitml.cosmic.shipped import resolve_model

        resolve_model(model)  # a bad name fails before any frame is read
    common = dict(gain=gain, read_noise=read_noise, exptime=exptime, pixel_size_um=pixel_size,
                  saturation_adu=saturation, instrument=instrument, hdu=hdu)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped, loaded = [], [], []
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"cosmic detect ({method.value})", total=len(specs))
        for spec, frame, err in iter_frames(specs, **common):
            prog.advance(task)
            if err is not None:
                if len(specs) == 1:  # one frame: its error is the command's, one line
                    raise err
                console.print(f"[yellow]skipped[/] {err}")
                skipped.append({"frame": str(spec.path), "error": err.reason})
                continue
            for note in frame.notes:
                console.print(f"[dim]{frame.path.name}: {note}[/]")
            if method is Method.stack:
                loaded.append(frame)
                continue
            try:
                if method is Method.lacosmic:
                    det = detect_lacosmic(frame, sigclip=sigclip, objlim=objlim, background=background)
                else:
                    net, card = unet_for(frame)
                    det = detect_unet(frame, net, card, threshold=threshold, background=background,
                                      engine=engine)
            except OrbitmlInputError as exc:
                if len(specs) == 1:
                    raise
                console.print(f"[yellow]skipped[/] {exc}")
                skipped.append({"frame": str(spec.path), "error": exc.reason})
                continue
            written.append(write_product(frame, det, out, overwrite=overwrite))
            console.print(f"{frame.path.name}: {det.n_regions} hits, {int(det.mask.sum())} px")
    if method is Method.stack and loaded:
        from orbitml.cosmic.stack import detect_stack

        for frame, det in zip(loaded, detect_stack(loaded, k=k), strict=True):
            written.append(write_product(frame, det, out, overwrite=overwrite))
            console.print(f"{frame.path.name}: {det.n_regions} hits, {int(det.mask.sum())} px")
    if not written:  # no run.json for a run that produced nothing
        raise OrbitmlInputError(f"no frame could be processed ({len(skipped)} skipped)")
    params = {"method": method.value, **{k_: v for k_, v in common.items() if v is not None},
              "sigclip": sigclip, "objlim": objlim, "background": background, "k": k,
              "model": model, "models_used": {str(p): {"name": c.get("name"), "weights_sha256": c.get(
                  "weights_sha256"), "notice": _notice(c)} for p, (_, c) in models.items()},
              "threshold": threshold, "skipped": skipped}
    write_run_info(out, "orbitml cosmic detect", params, inputs=[str(s.path) for s in specs],
                   name="detect.run.json")
    console.print(f"wrote {len(written)} product(s) to {out}" + (f"; skipped {len(skipped)} bad frame(s)"
                                                                   if skipped else ""))


def _notice(card):
    from orbitml.nn.weights import simulated_notice

    return simulated_notice(card)


def models(as_json: bool = typer.Option(False, "--json", help="Print the model cards as JSON.")) -> None:
    """List the U-Nets shipped with orbitml: what they were trained on, threshold, validation figures."""
    import json

    from rich.table import Table

    from orbitml.cosmic.shipped import DEFAULT, model_cards

    cards = model_cards()
    if as_json:
        print(json.dumps(cards, indent=2, default=str))
        return
    table = Table(title="shipped cosmic-ray models (--method unet --model NAME)")
    for col in ("name", "used for", "threshold", "val. detection at FPR 1e-4 / 1e-3 / 5e-3", "per kind"):
        table.add_column(col)
    for c in cards:
        m = c.get("metrics", {})
        rates = " / ".join(f"{v:.3f}" for _, v in sorted(m.get("detection_rate", {}).items(), key=lambda kv:
                                                          float(kv[0])))
        per = ", ".join(f"{k} {v['detection_rate']:.2f}" for k, v in m.get("per_kind_at_threshold", {}).items())
        table.add_row(c.get("name", "?") + (" (default)" if c.get("name") == DEFAULT else ""),
                      ", ".join(c.get("default_for", [])), f"{c.get('threshold', float('nan')):.3g}", rates, per)
    console.print(table)
    for c in cards:
        td = c.get("training_data", {})
        console.print(f"{c.get('name')}: trained on {td.get('simulated_description', '?')}; "
                      f"sha256 {str(c.get('weights_sha256'))[:16]}")
        n = _notice(c)
        if n:
            console.print(f"[yellow]note:[/] {c.get('name')}: {n}")


def train(
    manifest: Path = typer.Argument(..., help="YAML manifest (frames, simulated, n_hits, epochs, seed, out...)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the training progress bar."),
) -> None:
    """Train the compact cosmic-ray U-Net on real + simulated frames with injected hits."""
    from orbitml.cosmic.train import load_manifest
    from orbitml.cosmic.train import train as run_train

    man, _ = load_manifest(manifest)
    card = run_train(man, progress=progress)
    m = card["metrics"]
    rates = ", ".join(f"{v:.3f} at FPR {k}" for k, v in m["detection_rate"].items())
    console.print(f"saved {man.out}.safetensors (+ .json card); validation detection rate {rates}; "
                  f"hit recall {m['hit_recall']:.3f}, precision {m['hit_precision']:.3f}")


def register(app: typer.Typer) -> None:
    app.command("detect")(detect)
    app.command("train")(train)
    app.command("models")(models)
