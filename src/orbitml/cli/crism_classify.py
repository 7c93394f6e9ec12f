"""``orbitml crism train | classify | ratio | evaluate``: the CRISM classification half.

Heavy imports happen inside the commands so ``orbitml --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import typer

from orbitml.cli._common import console, print_json


@contextlib.contextmanager
def _progress(title: str):
    """A rich status line; yields a callback that logs each step with its elapsed time."""
    t0 = time.perf_counter()
    with console.status(title) as st:
        def say(msg: str) -> None:
            st.update(msg)
            console.print(f"{msg} ({time.perf_counter() - t0:.1f} s)")  # print, not log: no source-line column

        yield say


RATIO_HELP = ("column (crism_ml's bland-pixel column ratioing; needs detector geometry, refused for a map-projected "
              "product) or scene (one scene-level bland-pixel denominator, marked in the outputs).")


def _settings(config: Path | None, seed: int | None, **over):
    from orbitml.crism.settings import CrismSettings
    from orbitml.io.manifest import read_yaml_mapping, validate_manifest

    # read with limits (alias bombs, size, depth), validated with one line naming every bad key
    data = read_yaml_mapping(config) if config is not None else {}
    data.update({k: v for k, v in over.items() if v is not None})
    if seed is not None:
        data["seed"] = seed
    return validate_manifest(data, CrismSettings, config)


def _load_model(model: Path):
    from orbitml.crism.ensemble import CrismClassifier

    return CrismClassifier.load(model)


def _open_image(image: Path, wavelengths: Path | None):
    """The image, loaded once its size is known to fit (the cube, a float32 working copy and the outputs)."""
    from orbitml.io import open_scene
    from orbitml.io.integrity import check_load

    lazy = open_scene(image, wavelengths=wavelengths, chunks="auto")
    nb, h, w = (int(v) for v in lazy.shape)
    check_load(nb * h * w * (lazy.dtype.itemsize + 12), f"classifying or ratioing this {nb} x {h} x {w} cube", image,
               "cut a window first (e.g. gdal_translate -srcwin)")
    return lazy.load()


def train(
    out: Path = typer.Option(..., "--out", help="Model folder (model.npz + model.json)."),
    bland: Path | None = typer.Option(None, "--bland", help="CRISM_bland_unratioed.mat (v5 or v7.3)."),
    labeled: Path | None = typer.Option(None, "--labeled", help="CRISM_labeled_pixels_ratioed.mat (v5 or v7.3)."),
    simulated: bool = typer.Option(False, "--simulated", help="Train on the simulated labelled and bland sets."),
    config: Path | None = typer.Option(None, "--config", help="YAML settings manifest (CrismSettings fields)."),
    seed: int | None = typer.Option(None, help="Random seed (image split for weights and calibration)."),
    force: bool = typer.Option(False, "--force", help="Retrain even if the model is up to date."),
) -> None:
    """Train the bland-pixel model and the HBM ensemble; learn weights and calibration on held-out images."""
    from orbitml.crism import train as ct
    from orbitml.crism.matfile import read_mat
    from orbitml.errors import OrbitmlInputError
    from orbitml.io.provenance import write_run_info

    settings = _settings(config, seed)
    if simulated:
        if labeled or bland:
            raise OrbitmlInputError("use either --simulated or --labeled/--bland, not both")
        lab, bl = ct.simulated_datasets(seed=settings.seed)
    else:
        if labeled is None:
            raise OrbitmlInputError("--labeled L.mat is required (or --simulated)")
        lab = read_mat(labeled, labelled=True)
        bl = read_mat(bland) if bland is not None else None
    with _progress("training CRISM classifier") as say:
        folder, trained = ct.train(lab, bl, settings, out, force=force, progress=say)
    write_run_info(folder, "crism train", settings.model_dump(), settings.seed,
                   [str(p) for p in (labeled, bland) if p] or ["simulated"])
    _, _, card = _load_model(folder)
    cal = card.get("calibration") or {}
    msg = f"{'trained' if trained else 'up to date'}: {folder} ({len(card['classes'])} classes, {card['n_models']} HBMs"
    if cal:
        msg += f"; held-out ECE {cal['ece_before']:.3f} -> {cal['ece_after']:.3f} at T={cal['temperature']:.2f}"
    console.print(msg + ")")
    from orbitml.crism.outputs import model_notice

    notice = model_notice(card)
    if notice:
        console.print(f"[bold yellow]warning:[/bold yellow] {notice}")


def classify(
    image: Path = typer.Argument(..., help="CRISM I/F image (TRR3, MTRDR, ENVI, GeoTIFF...)."),
    model: Path = typer.Option(..., "--model", help="Model folder from `orbitml crism train`."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    wavelengths: Path | None = typer.Option(None, "--wavelengths", help="Band-centre CSV (nm), if none in the image."),
    format: str = typer.Option("gtiff", "--format", help="gtiff or envi for the maps and the ratioed cube."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html."),
    ratio_method: str = typer.Option("column", "--ratio", help=RATIO_HELP),
) -> None:
    """Classify one image: class map, confidence map, ratioed cube, regions (CSV, GeoJSON), HTML page."""
    from orbitml.crism.outputs import image_report, model_notice, write_products
    from orbitml.crism.pipeline import check_ratio_method, classify_scene
    from orbitml.errors import OrbitmlInputError
    from orbitml.io.provenance import write_run_info

    if format not in ("gtiff", "envi", "cog"):
        raise OrbitmlInputError(f"--format must be gtiff or envi, got {format!r}")
    clf, bland, card = _load_model(model)
    scene = _open_image(image, wavelengths)
    check_ratio_method(scene, ratio_method, image)
    notice = model_notice(card)
    if notice:
        console.print(f"[bold yellow]warning:[/bold yellow] {notice}")
    with _progress(f"classifying {image.name}") as say:
        res = classify_scene(scene, clf, bland, progress=say, ratio=ratio_method)
        paths = write_products(res, out, template=scene, fmt=format, overwrite=overwrite, name=image.stem,
                               notice=notice)
        if report:
            paths["report"] = image_report(res, out / "report.html", image.name, card)
    write_run_info(out, "crism classify", {"model": str(model), "format": format, "cache_key": card.get("cache_key"),
                                           "ratio": ratio_method, "unknown_fraction": res.unknown_fraction,
                                           "notice": notice, "timings_s": res.timings}, clf.settings.seed,
                   [str(image)])
    console.print(f"{image.name}: {len(res.regions)} regions; {res.unknown_fraction:.1%} of valid pixels unknown "
                  f"(outside the training data); ratio: {ratio_method}; wrote "
                  f"{', '.join(p.name for p in paths.values())} to {out}")


def ratio(
    image: Path = typer.Argument(..., help="CRISM I/F image."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    model: Path | None = typer.Option(None, "--model", help="Model folder holding a bland-pixel model."),
    bland: Path | None = typer.Option(None, "--bland", help="Or: CRISM_bland_unratioed.mat to fit one now."),
    wavelengths: Path | None = typer.Option(None, "--wavelengths", help="Band-centre CSV (nm), if none in the image."),
    format: str = typer.Option("gtiff", "--format", help="gtiff or envi."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    ratio_method: str = typer.Option("column", "--ratio", help=RATIO_HELP),
) -> None:
    """Bad values, column spikes, bland-pixel column ratioing and despiking: writes the ratioed cube."""
    import numpy as np

    from orbitml.crism import bands as cb
    from orbitml.crism.matfile import read_mat
    from orbitml.crism.pipeline import check_ratio_method, ratio_cube, scene_cube
    from orbitml.crism.ratio import BlandModel
    from orbitml.crism.settings import CrismSettings
    from orbitml.crism.train import dataset_wavelengths
    from orbitml.errors import OrbitmlInputError
    from orbitml.io import write_scene
    from orbitml.io.provenance import write_run_info
    from orbitml.scene import make_scene

    if (model is None) == (bland is None):
        raise OrbitmlInputError("give exactly one of --model MODEL (with a bland model) or --bland B.mat")
    settings = CrismSettings()
    if model is not None:
        clf, bmodel, _ = _load_model(model)
        settings = clf.settings
        if bmodel is None:
            raise OrbitmlInputError("this model has no bland-pixel model", model)
    else:
        ds = read_mat(bland)
        bmodel = BlandModel().fit(ds.pixspec, ds.pixims, dataset_wavelengths(ds))
    scene = _open_image(image, wavelengths)
    check_ratio_method(scene, ratio_method, image)
    from orbitml.scene import wavelengths as scene_wavelengths

    wl = scene_wavelengths(scene)
    if wl is None:
        raise OrbitmlInputError("the image has no wavelength table; pass --wavelengths CSV", image)
    keep = np.flatnonzero(cb.l_band_mask(wl))
    if keep.size == 0:
        raise OrbitmlInputError("no band of the image lies in 1021-3477 nm", image)
    keep = keep[np.argsort(wl[keep])]
    cube, wl_k = scene_cube(scene, keep)  # one C-ordered copy of the L bands, processed in place
    main = cb.main_band_mask(wl_k)
    with _progress(f"ratioing {image.name}") as say:
        pre = ratio_cube(cube, wl_k, main, bmodel, settings, source=str(image), progress=say, method=ratio_method)
    R, score, v = pre.ratioed, pre.blandness, pre.valid
    ext = ".tif" if format != "envi" else ".img"
    rs = make_scene(np.moveaxis(R, -1, 0), wavelength=wl_k, crs=scene.rio.crs, transform=scene.rio.transform(),
                    nodata=np.nan, attrs={"instrument": "CRISM", "units": "ratioed I/F", "source": image.name,
                                          "processing": f"ratio_method={ratio_method}"})
    path = write_scene(rs, Path(out) / f"ratioed{ext}", format, overwrite=overwrite)
    bl = make_scene(score, crs=scene.rio.crs, transform=scene.rio.transform(),
                    nodata=-np.inf, band_names=["blandness"], attrs={"units": "log-likelihood"})
    write_scene(bl, Path(out) / f"blandness{ext}", format, overwrite=overwrite)
    write_run_info(out, "crism ratio", {"model": str(model) if model else None, "bland": str(bland) if bland else None,
                                        "ratio": ratio_method}, None, [str(image)])
    console.print(f"wrote {path} ({wl_k.size} bands, {int(v.sum())} ratioed pixels of {v.size})")


def evaluate(
    labeled: Path = typer.Option(..., "--labeled", help="Labelled MAT file (v5 or v7.3)."),
    model: Path | None = typer.Option(None, "--model", help="Model folder to evaluate."),
    images: list[str] | None = typer.Option(None, "--images", help="Image names to evaluate on (repeatable)."),
    cv: int = typer.Option(0, "--cv", help="Instead of a model: image-wise K-fold cross-validation."),
    config: Path | None = typer.Option(None, "--config", help="YAML settings for --cv training."),
    out: Path | None = typer.Option(None, "--out", help="Write metrics.json here."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Accuracy and macro-F1 (fine and broad classes), confusion matrices and ECE on whole held-out images."""
    import json

    from orbitml.crism.evaluate import cross_validate, evaluate_model
    from orbitml.crism.matfile import read_mat
    from orbitml.errors import OrbitmlInputError
    from orbitml.io.atomic import atomic_path

    ds = read_mat(labeled, labelled=True)
    if cv:
        if model is not None:
            raise OrbitmlInputError("use either --model or --cv")
        settings = _settings(config, None)
        with _progress("image-wise cross-validation") as say:
            res = cross_validate(ds, settings, cv, progress=say)
    else:
        if model is None:
            raise OrbitmlInputError("--model MODEL is required (or --cv K)")
        clf, _, card = _load_model(model)
        names = list(images or [])
        trained_on = set(card.get("training", {}).get("images", [])) - set(
            card.get("training", {}).get("heldout_image_names", []) if not clf.settings.refit_full else [])
        if not names:
            names = [n for n in ds.im_names if n not in trained_on] if trained_on else []
            if not names:
                raise OrbitmlInputError("every image of the file was used to train this model; name test images "
                                        "with --images or use --cv K", labeled)
        overlap = sorted(set(names) & trained_on) if ds.source == card.get("training", {}).get("labelled") else []
        if overlap:
            console.print(f"[yellow]warning:[/yellow] {len(overlap)} evaluated image(s) were used in training")
        res = evaluate_model(clf, ds, names)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "metrics.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(res, indent=2), encoding="utf-8")
    if as_json:
        print_json(res)
    else:
        from orbitml.report.html import format_number as fmt

        print(f"accuracy {fmt(res['accuracy'])}  macro-F1 {fmt(res['macro_f1'])}  "
              f"broad accuracy {fmt(res['broad_accuracy'])}  broad macro-F1 {fmt(res['broad_macro_f1'])}"
              + (f"  ECE {res['ece']:.3f} (uncalibrated {res['ece_uncalibrated']:.3f})" if "ece" in res else ""))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("classify")(classify)
    app.command("ratio")(ratio)
    app.command("evaluate")(evaluate)
