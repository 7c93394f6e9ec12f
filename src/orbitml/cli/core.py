"""Core commands: ``orbitml info``, ``orbitml convert``, ``orbitml demo``."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from orbitml.cli._common import console, print_json


def info(
    paths: list[Path] = typer.Argument(..., help="Image files (CRISM, CTX, HiRISE, MOLA, ENVI, GeoTIFF, FITS, ...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    wavelengths: Path | None = typer.Option(None, help="CSV of band centres (nm) for products without them."),
    hdu: str | None = typer.Option(None, help="FITS HDU index or EXTNAME."),
) -> None:
    """Describe image files: format, shape, dtype, wavelengths, CRS, transform, nodata, label facts."""
    from orbitml.errors import OrbitmlInputError
    from orbitml.io import describe

    hdu_arg = int(hdu) if hdu is not None and hdu.isdigit() else hdu
    results, failed = [], []
    for p in paths:
        try:
            d = describe(p, wavelengths=wavelengths, hdu=hdu_arg)
        except OrbitmlInputError as exc:
            if len(paths) == 1:
                raise
            failed.append(str(exc))
            continue
        results.append(d)
    if as_json:
        print_json(results)  # always a list, one object per file
    else:
        from rich.table import Table

        from orbitml.cli._common import out

        for d in results:
            t = Table(title=Path(d["path"]).name, show_header=False, title_justify="left")
            for k, v in d.items():
                if k == "crs_wkt":
                    continue
                if k == "wavelength_nm" and v is not None:
                    v = f"{v[0]:.2f} - {v[1]:.2f} nm"
                if k == "transform":
                    v = ", ".join(f"{x:.6g}" for x in v)
                t.add_row(k, "-" if v is None else str(v))
            out.print(t)
    for msg in failed:
        console.print(f"[red]orbitml: error:[/red] {msg}")
    if failed:
        raise typer.Exit(2)


def convert(
    src: Path = typer.Argument(..., help="Input image."),
    dst: Path = typer.Argument(..., help="Output file (.tif -> GeoTIFF, else ENVI)."),
    format: str | None = typer.Option(None, "--format", "-f", help="envi, gtiff or cog (default: from suffix)."),
    wavelengths: Path | None = typer.Option(None, help="CSV of band centres (nm) for products without them."),
    hdu: str | None = typer.Option(None, help="FITS HDU index or EXTNAME."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Convert an image to ENVI or GeoTIFF, keeping CRS, transform, wavelengths and nodata."""
    from orbitml.io import open_scene, write_scene
    from orbitml.io.atomic import check_writable

    check_writable(dst, overwrite)
    hdu_arg = int(hdu) if hdu is not None and hdu.isdigit() else hdu
    scene = open_scene(src, chunks={"y": 1024, "x": 1024}, wavelengths=wavelengths, hdu=hdu_arg)
    write_scene(scene, dst, format=format, overwrite=overwrite)
    console.print(f"wrote {dst} ({scene.sizes['band']} bands, {scene.sizes['y']} x {scene.sizes['x']})")


def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Output folder for products and report.html."),
    quick: bool = typer.Option(False, "--quick", help="Smaller data; the whole demo in under two minutes."),
    seed: int = typer.Option(0, help="Random seed for every simulated data set."),
    only: list[str] = typer.Option([], "--only", help="Run only sections whose module name contains this."),
) -> None:
    """Run every workflow on built-in simulated data and write an HTML report."""
    from orbitml.report.demo import run_demo

    t0 = time.perf_counter()
    report_path, results = run_demo(out, quick=quick, seed=seed, only=only)
    for name, status, secs in results:
        colour = "green" if status == "ok" else "red"
        console.print(f"[{colour}]{status:>6}[/{colour}] {name} ({secs:.1f} s)")
    console.print(f"report: {report_path}  (total {time.perf_counter() - t0:.1f} s)")
    if any(s != "ok" for _, s, _ in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
    app.command("convert")(convert)
    app.command("demo")(demo)
