"""``orbitml crism params``: CRISM summary parameters (Viviano-Beck 2014) and browse products."""

from __future__ import annotations

from pathlib import Path

import typer

from orbitml.cli._common import console


def _parse_limits(items: list[str] | None) -> dict[str, tuple[float, float]]:
    from orbitml.errors import OrbitmlInputError

    out: dict[str, tuple[float, float]] = {}
    for item in items or []:
        try:
            name, rng = item.split("=", 1)
            lo, hi = (float(v) for v in rng.split(":", 1))
        except ValueError:
            raise OrbitmlInputError(f"--stretch expects PARAM=LOW:HIGH, got {item!r}") from None
        out[name.strip()] = (lo, hi)
    return out


def params(
    image: Path = typer.Argument(..., help="CRISM I/F or ratioed cube (MTRDR, TRR3, ENVI, GeoTIFF, ...)."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    wavelengths: Path | None = typer.Option(None, help="CSV of band centres (nm) for products without them."),
    params: str | None = typer.Option(None, "--params",
                                      help="Comma-separated parameters (default: the whole table)."),
    browse: str | None = typer.Option(None, "--browse",
                                      help="Comma-separated browse products (default: every product the data "
                                           "support; 'none' for none)."),
    format: str = typer.Option("gtiff", "--format", "-f", help="Parameter cube format: gtiff or envi."),
    stretch: list[str] | None = typer.Option(None, "--stretch",
                                             help="Fixed browse stretch PARAM=LOW:HIGH (repeatable)."),
    percentiles: str = typer.Option("0.1,99.9", help="Percentile stretch for the other channels."),
    tolerance_nm: float = typer.Option(15.0, help="Largest distance (nm) to the nearest band of a formula."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Compute summary parameters and browse products of a CRISM cube, with CRS kept."""
    import csv
    import json
    import warnings

    import numpy as np
    from rich.progress import Progress

    from orbitml.crism import browse as br
    from orbitml.crism.params import resolve_names, summary_parameters
    from orbitml.errors import OrbitmlInputError
    from orbitml.io import open_scene, write_scene
    from orbitml.io.atomic import atomic_path, check_writable
    from orbitml.io.provenance import write_run_info

    fmt = format.lower()
    if fmt not in ("gtiff", "envi"):
        raise OrbitmlInputError(f"--format must be gtiff or envi, got {format!r}")
    try:
        pct = tuple(float(v) for v in percentiles.split(","))
        if len(pct) != 2 or not 0 <= pct[0] < pct[1] <= 100:
            raise ValueError
    except ValueError:
        raise OrbitmlInputError(f"--percentiles expects LOW,HIGH in 0..100, got {percentiles!r}") from None
    limits = _parse_limits(stretch)

    explicit = resolve_names(params) if params else []
    browse_all = browse is None
    products = [] if (browse or "").strip().lower() == "none" else br.resolve_products(None if browse_all else browse)
    wanted = explicit or resolve_names(None)
    names = list(dict.fromkeys([*wanted, *br.product_parameters(products)]))

    cube = out / ("parameters.tif" if fmt == "gtiff" else "parameters.img")
    check_writable(cube, overwrite)
    scene = open_scene(image, chunks={"y": 256}, wavelengths=wavelengths)
    if "wavelength" not in scene.coords:
        raise OrbitmlInputError("the image has no band wavelengths; pass --wavelengths CSV", image)
    from orbitml.io.integrity import check_load

    h, w = scene.sizes["y"], scene.sizes["x"]
    # the parameter cube (float32) and, for the browse products, three float64 channels at a time
    check_load((len(names) * 4 + (3 * 8 if products else 0)) * h * w,
               f"{len(names)} parameters of a {h} x {w} image", image,
               "choose fewer with --params and --browse none, or cut a window first (e.g. gdal_translate -srcwin)")

    with warnings.catch_warnings(record=True) as caught, Progress(console=console, transient=True) as bar:
        warnings.simplefilter("always", RuntimeWarning)
        task = bar.add_task(f"{len(names)} parameters", total=scene.sizes["y"])
        result = summary_parameters(scene, names, tolerance_nm=tolerance_nm, strict=False,
                                    progress=lambda done, total: bar.update(task, completed=done))
    missing = json.loads(result.attrs["parameters_missing"])
    needed_explicitly = set(explicit) | (set() if browse_all else set(br.product_parameters(products)))
    refused = [n for n in missing if n in needed_explicitly]
    if refused:
        raise OrbitmlInputError(f"cannot compute {', '.join(refused)}: {missing[refused[0]]}", image)
    if browse_all:  # skip products whose parameters the data do not cover
        products = [p for p in products if not set(br.product_parameters([p])) & set(missing)]
    keep = [n for n in wanted if n not in missing] if not explicit else wanted
    cube_scene = result.isel(band=[names.index(n) for n in keep])
    cube_scene = cube_scene.assign_coords(band=np.arange(1, len(keep) + 1))

    write_scene(cube_scene, cube, format=fmt, overwrite=overwrite)
    bands_csv = out / "parameter_bands.csv"
    with atomic_path(bands_csv, overwrite=True) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["parameter", "requested_nm", "band", "band_nm", "kernel"])
        w.writeheader()
        w.writerows(r for r in json.loads(result.attrs["parameter_bands"]) if r["parameter"] in keep)
    written = {}
    for prod in products:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            paths = br.write_browse(result, prod, out / "browse", overwrite=overwrite, limits=limits,
                                    percentiles=pct)
        written[prod] = [str(p) for p in paths.values()]
    write_run_info(out, "orbitml crism params", params={
        "parameters": keep, "browse": products, "format": fmt, "percentiles": list(pct),
        "stretch_limits": limits, "tolerance_nm": tolerance_nm, "wavelengths": wavelengths,
        "skipped_for_coverage": missing,
    }, inputs=[str(image)] + ([str(wavelengths)] if wavelengths else []))
    for w_ in caught:
        if "wavelength coverage" not in str(w_.message):
            console.print(f"[yellow]warning:[/yellow] {w_.message}")
    if missing:
        console.print(f"[yellow]not covered by the data's wavelengths (skipped):[/yellow] {', '.join(missing)}")
    console.print(f"wrote {cube} ({len(keep)} parameters), {len(written)} browse products in {out / 'browse'}")


def register(app: typer.Typer) -> None:
    """Add ``params`` to the ``orbitml crism`` app."""
    app.command("params")(params)
