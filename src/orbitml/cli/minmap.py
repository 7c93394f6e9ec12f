"""``orbitml minmap ...``: library-trained mineral mapping (class map + abundance cube) with a 3-D CNN."""

from __future__ import annotations

from pathlib import Path

import typer

from orbitml.cli._common import console, print_json

app = typer.Typer(help="Mineral mapping from spectral libraries: train, map, evaluate, simulate.",
                  no_args_is_help=True)


def _log(msg: str) -> None:
    console.print(msg, markup=False, highlight=False)


@app.command("train")
def train_cmd(manifest: Path = typer.Argument(..., help="YAML manifest (see docs/minmap.md)"),
              progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")) -> None:
    """Train a model from the libraries named in MANIFEST; writes the model folder given by `out`."""
    from orbitml.minmap.manifest import load
    from orbitml.minmap.train import train

    man = load(manifest)
    man.progress = bool(progress)
    out = train(man, manifest, log=_log)
    print(out)


@app.command("map")
def map_cmd(model: Path = typer.Option(..., "--model", help="model folder or model.safetensors"),
            scene: list[Path] = typer.Option(..., "--scene", help="scene to map (any format orbitml reads); "
                                                                  "repeat for several (out/<scene name>/ each)"),
            out: Path = typer.Option(..., "--out", help="output folder"),
            mask: Path | None = typer.Option(None, "--mask", help="valid-pixel mask (non-zero = map), same grid"),
            threshold: float | None = typer.Option(None, "--threshold", min=0.0, max=1.0,
                                                   help="top probability below which a pixel is Unclassified "
                                                        "(default: the model's)"),
            device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto"),
            progress: bool = typer.Option(True, "--progress/--no-progress"),
            workers: int = typer.Option(1, "--workers", min=1, help="several scenes: local dask worker processes"),
            scheduler: str | None = typer.Option(None, "--scheduler", help="several scenes: a dask scheduler "
                                                                         "address (a cluster)")) -> None:
    """Map whole scenes: class map (GeoTIFF + ENVI), abundance cube (ENVI), confidence, classified.png."""
    from orbitml.errors import OrbitmlInputError
    from orbitml.minmap.run import map_file, map_many

    if len(scene) == 1:
        info = map_file(model, scene[0], out, mask_path=mask, threshold=threshold, device=device,
                        progress=progress, log=_log)
        print_json(info)
        return
    if mask is not None:
        raise OrbitmlInputError("--mask goes with one --scene (each scene has its own grid)")
    results = map_many(model, scene, out, threshold=threshold, device=device, workers=workers,
                       scheduler=scheduler, log=_log)
    print_json(results)
    failed = [r for r in results if "error" in r]
    if len(failed) == len(results):
        raise OrbitmlInputError(f"no scene could be mapped ({len(failed)} failed)")


@app.command("evaluate")
def evaluate_cmd(model: Path = typer.Option(..., "--model"),
                 scene: Path = typer.Option(..., "--scene"),
                 truth: list[Path] = typer.Option(..., "--truth", help="class raster (values 1..K) and/or "
                                                                       "abundance cube (K bands); repeatable"),
                 mask: Path | None = typer.Option(None, "--mask"),
                 threshold: float | None = typer.Option(None, "--threshold", min=0.0, max=1.0),
                 out: Path | None = typer.Option(None, "--out", help="folder for evaluation.json/.html"),
                 device: str = typer.Option("cpu", "--device")) -> None:
    """Network and FCLS class-mean baseline against truth: OA, kappa, per-class F1, abundance RMSE."""
    from orbitml.minmap.run import evaluate_file

    res = evaluate_file(model, scene, [str(t) for t in truth], mask_path=mask, threshold=threshold, out=out,
                        device=device, log=_log)
    if res.get("notice"):
        _log(f"NOTE: {res['notice']}")
    for method in ("network", "fcls_class_mean"):
        m = res[method]
        parts = [f"{k}={m[k]:.4f}" for k in ("overall_accuracy", "kappa", "mean_f1", "abundance_rmse") if k in m]
        _log(f"{method:16s} " + " ".join(parts))
    print_json(res)


@app.command("simulate")
def simulate_cmd(out: Path = typer.Option(..., "--out", help="folder for the example"),
                 size: int = typer.Option(48, "--size", min=16, max=2048, help="scene height and width"),
                 snr_db: float = typer.Option(30.0, "--snr-db"),
                 seed: int = typer.Option(0, "--seed"),
                 full: bool = typer.Option(False, "--full", help="manifest for a full-size (27 px, ~1.25 M "
                                                                  "parameter) model instead of a quick one")) -> None:
    """Write a simulated scene, its truth, per-class libraries and a ready manifest (all simulated)."""
    from orbitml.minmap.run import write_simulation

    paths = write_simulation(out, shape=(size, size), snr_db=snr_db, seed=seed, quick=not full)
    _log("simulated example (not real data); next: orbitml minmap train " + str(paths["manifest"]))
    print_json({k: str(v) for k, v in paths.items()})
