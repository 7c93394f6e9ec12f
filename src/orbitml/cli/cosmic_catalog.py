"""``orbitml cosmic catalog`` and ``orbitml cosmic rate``: per-hit catalogue and hit rates over a mission."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from orbitml.cli._common import console


def catalog(
    inputs: list[Path] = typer.Argument(..., help="Folders of *.cosmic.fits products (from `cosmic detect`) "
                                                  "or product files."),
    out: Path = typer.Option(..., "--out", help="Hit table: catalog.parquet or catalog.csv (a frame table "
                                                "<name>.frames.<ext> is written beside it)."),
    classifier: str = typer.Option("forest", "--classifier",
                                   help="forest (learned, trained on simulated hits) or rules (baseline)."),
    model: Path | None = typer.Option(None, "--model", help="A saved hit classifier (.safetensors + .json) "
                                                            "instead of the built-in forest."),
    seed: int = typer.Option(0, "--seed", help="Seed of the built-in forest's training."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Categorise every hit of the detection products and write one catalogue row per hit."""
    from rich.progress import Progress

    from orbitml.cosmic.catalog import build_catalog, find_products, frames_path, write_catalog
    from orbitml.cosmic.categorise import HitClassifier, default_classifier
    from orbitml.errors import OrbitmlInputError
    from orbitml.io.atomic import check_writable
    from orbitml.io.provenance import write_run_info

    if out.suffix.lower() not in (".parquet", ".csv"):
        raise OrbitmlInputError("--out must end in .parquet or .csv", out)
    check_writable(out, overwrite)
    check_writable(frames_path(out), overwrite)
    products = find_products(inputs)
    if model is not None:
        clf = HitClassifier.load(model)
    elif classifier == "rules":
        clf = HitClassifier("rules")
    elif classifier == "forest":
        with console.status("training the hit classifier on simulated hits (cached after the first run)"):
            clf = default_classifier(random_state=seed)
    else:
        raise OrbitmlInputError(f"--classifier must be forest or rules, got {classifier!r}")

    def report(exc: OrbitmlInputError) -> None:
        print(f"orbitml: skipped {exc}", file=sys.stderr)  # one unwrapped line per bad product

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("categorising hits", total=len(products))
        hits, frames, errors = build_catalog(products, clf, on_error=report,
                                             progress=lambda _p: bar.advance(task))
    if frames.empty:
        raise OrbitmlInputError(f"none of the {len(products)} products could be read")
    hit_path, frame_path = write_catalog(hits, frames, out, overwrite=overwrite)
    write_run_info(out.parent, "cosmic catalog",
                   {"out": str(out), "classifier": "model" if model else classifier,
                    "model": str(model) if model else None, "classifier_card": clf.card_,
                    "skipped": errors}, seed=seed, inputs=[str(p) for p in products],
                   name=f"{out.stem}.run.json")
    n_cos = int(hits["is_cosmic"].sum()) if len(hits) else 0
    counts = hits["class"].value_counts().to_dict() if len(hits) else {}
    if as_json:
        print(json.dumps({"frames": len(frames), "regions": len(hits), "cosmic_ray_hits": n_cos,
                          "classes": {str(k): int(v) for k, v in counts.items()}, "skipped": len(errors),
                          "hits": str(hit_path), "frame_table": str(frame_path)}, indent=2))
        return
    print(f"{len(frames)} frames, {len(hits)} regions, {n_cos} cosmic-ray hits "
          f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}); {len(errors)} skipped")
    print(f"wrote {hit_path} and {frame_path}")


def rate(
    catalog_path: Path = typer.Argument(..., metavar="CATALOG", help="Catalogue from `cosmic catalog`."),
    out: Path = typer.Option(..., "--out", help="Output folder: rates.csv, rates_binned.csv, rates.png, "
                                                "hit_stats.csv, hits.png."),
    classes: str = typer.Option("spot,track,worm", "--class",
                                help="Comma-separated hit classes to count."),
    bin: str | None = typer.Option(None, "--bin", help="Time bin for the series (pandas frequency: 1d, 6h, "
                                                       "30min); default: per frame only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Hit rate per frame (hits per cm^2 per s) and over time, with Poisson uncertainties, as CSV and PNG;
    energy and length statistics of the hits per class."""
    from orbitml.cosmic.catalog import read_catalog
    from orbitml.cosmic.rates import (
        binned_rates,
        constancy_chi2,
        frame_rates,
        hit_statistics,
        parse_classes,
        plot_hit_distributions,
        plot_rates,
    )
    from orbitml.errors import OrbitmlInputError
    from orbitml.io.atomic import atomic_path, check_writable
    from orbitml.io.provenance import write_run_info

    cls = parse_classes(classes)
    hits, frames = read_catalog(catalog_path)
    targets = [out / "rates.csv", out / "rates.png", out / "hit_stats.csv", out / "hits.png"]
    targets += [out / "rates_binned.csv"] if bin else []
    for t in targets:
        check_writable(t, overwrite)
    per_frame, notes = frame_rates(hits, frames, cls)
    for n in notes:
        print(f"orbitml: note: {n}", file=sys.stderr)
    if per_frame.empty:
        raise OrbitmlInputError("no frame has an exposure time and valid pixels: no rate", catalog_path)
    binned = binned_rates(per_frame, bin) if bin else None
    if bin and per_frame["time"].isna().all():
        raise OrbitmlInputError("no frame has an observation time (DATE-OBS): cannot bin by time",
                                catalog_path)
    with atomic_path(out / "rates.csv", overwrite=overwrite) as tmp:
        per_frame.to_csv(tmp, index=False)
    if binned is not None:
        with atomic_path(out / "rates_binned.csv", overwrite=overwrite) as tmp:
            binned.to_csv(tmp, index=False)
    with atomic_path(out / "rates.png", overwrite=overwrite) as tmp:
        plot_rates(per_frame, binned, tmp, title=f"cosmic-ray hit rate ({', '.join(cls)})")
    with atomic_path(out / "hit_stats.csv", overwrite=overwrite) as tmp:
        hit_statistics(hits, cls).to_csv(tmp, index=False)
    with atomic_path(out / "hits.png", overwrite=overwrite) as tmp:
        plot_hit_distributions(hits, cls, tmp)
    stats = constancy_chi2(binned if binned is not None else per_frame)
    write_run_info(out, "cosmic rate", {"catalog": str(catalog_path), "classes": list(cls), "bin": bin,
                                        "notes": notes, "constancy": stats},
                   inputs=[str(catalog_path)], name="rates.run.json")
    err = stats.get("pooled_err", float("nan"))
    if as_json:
        print(json.dumps({"frames": len(per_frame), "hits": int(per_frame["n_hits"].sum()),
                          "constancy": stats, "outputs": [str(t) for t in targets]}, indent=2, default=float))
        return
    print(f"{len(per_frame)} frames, {int(per_frame['n_hits'].sum())} hits: pooled rate "
          f"{stats['pooled_rate']:.4g} +- {err:.2g} hits/cm^2/s; constant-rate chi2 {stats['chi2']:.1f} "
          f"for {stats['dof']} dof (p = {stats['p_value']:.3g})")
    print(f"wrote {', '.join(str(t) for t in targets)}")


def register(app: typer.Typer) -> None:
    app.command("catalog")(catalog)
    app.command("rate")(rate)
