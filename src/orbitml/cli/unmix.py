"""``orbitml unmix ...``: endmember count, endmember extraction and abundance maps for a cube."""

from __future__ import annotations

from pathlib import Path

import typer

from orbitml.cli._common import console, print_json

app = typer.Typer(help="Linear unmixing: endmember count, endmember extraction (VCA/AVCA/ATGP/N-FINDR), "
                       "abundances (FCLS/NNLS/UCLS).", no_args_is_help=True)

_WL_HELP = "CSV of band centres (nm) for cubes without them."


def _open(cube: Path, wavelengths: Path | None, chunks=None):
    from orbitml.io import open_scene

    return open_scene(cube, wavelengths=wavelengths, chunks=chunks)


def _drop_empty_bands(scene, cube: Path):
    """Drop bands that are nodata everywhere (e.g. water-vapour bands set to nodata), saying so."""
    import numpy as np

    from orbitml.errors import OrbitmlInputError
    from orbitml.scene import empty_bands

    empty = empty_bands(scene)
    if empty.size == scene.sizes["band"]:
        raise OrbitmlInputError("every band is nodata in every pixel", cube)
    if empty.size:
        console.print(f"dropping {empty.size} band(s) that hold no valid pixel: {(empty + 1).tolist()[:20]}")
        scene = scene.isel(band=np.setdiff1d(np.arange(scene.sizes["band"]), empty))
    return scene


_BANDS_HELP = "Wavelength ranges in nm to use, e.g. 1000-1800,2000-2500 (default: all bands)."
_BIN_HELP = "Average this many adjacent bands into one (spectral binning; 1 = none)."


def parse_ranges(text: str | None) -> list[tuple[float, float]] | None:
    """``"1000-1800,2000-2500"`` -> ``[(1000, 1800), (2000, 2500)]`` (nm)."""
    from orbitml.errors import OrbitmlInputError

    if not text:
        return None
    out = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a, b = float(lo), float(hi)
        except ValueError:
            raise OrbitmlInputError(f"--bands wants ranges like 1000-1800,2000-2500 (nm), got {part!r}") from None
        if not sep or not a < b:
            raise OrbitmlInputError(f"--bands range {part!r} must be LOW-HIGH with LOW < HIGH (nm)")
        out.append((a, b))
    return out


def _select(scene, cube: Path, bands: str | None, bin_size: int):
    from orbitml.scene import bin_bands, select_bands

    ranges = parse_ranges(bands)
    n0 = scene.sizes["band"]
    if ranges:
        scene = select_bands(scene, ranges)
    if bin_size > 1:
        scene = bin_bands(scene, bin_size)
    if scene.sizes["band"] != n0:
        console.print(f"using {scene.sizes['band']} of {n0} bands"
                      + (f" ({bands} nm)" if ranges else "") + (f", binned by {bin_size}" if bin_size > 1 else ""))
    return scene


def _load_pixels(cube: Path, wavelengths: Path | None, max_pixels: int | None, seed: int,
                 bands: str | None = None, bin_size: int = 1):
    """Valid pixels of the cube (a seeded random subset when there are more than ``max_pixels``)."""
    import numpy as np

    from orbitml.errors import OrbitmlInputError
    from orbitml.io.integrity import check_load
    from orbitml.scene import pixels

    lazy = _open(cube, wavelengths, chunks="auto")
    nb, h, w = (int(v) for v in lazy.shape)
    # the pixel matrix in float64 plus the loaded cube: checked before anything is read
    check_load(nb * h * w * (8 + lazy.dtype.itemsize), f"this {nb} x {h} x {w} cube", cube,
               "cut a window first (orbitml convert of a subset), or choose fewer bands with --bands/--bin")
    scene = _drop_empty_bands(lazy.load(), cube)
    scene = _select(scene, cube, bands, bin_size)
    X, index = pixels(scene)
    if X.shape[0] == 0:
        raise OrbitmlInputError("no valid pixel (every pixel is nodata or NaN in some band)", cube)
    if max_pixels and X.shape[0] > max_pixels:
        keep = np.sort(np.random.default_rng(seed).choice(X.shape[0], max_pixels, replace=False))
        console.print(f"using a random subset of {max_pixels} of {X.shape[0]} valid pixels (seed {seed})")
        X, index = X[keep], index[keep]
    return scene, X, index


@app.command("count")
def count(
    cube: Path = typer.Argument(..., help="Image cube (ENVI, GeoTIFF, PDS, ...)."),
    far: float = typer.Option(1e-3, help="False-alarm probability of the HFC/NWHFC tests."),
    rule: str = typer.Option("auto", help="Consensus: auto (HySime unless implausible against HFC/NWHFC; see docs), "
                                          "hysime, median, min, max, hfc or nwhfc."),
    max_pixels: int = typer.Option(1_000_000, help="Use a seeded random subset above this many pixels."),
    seed: int = typer.Option(0, help="Seed for the pixel subset."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    wavelengths: Path | None = typer.Option(None, help=_WL_HELP),
    bands: str | None = typer.Option(None, "--bands", metavar="RANGES", help=_BANDS_HELP),
    bin_size: int = typer.Option(1, "--bin", min=1, help=_BIN_HELP),
) -> None:
    """Estimate the number of endmembers (HFC, NWHFC, HySime) and print all estimates."""
    from orbitml.unmix import estimate_count

    _, X, _ = _load_pixels(cube, wavelengths, max_pixels, seed, bands, bin_size)
    est = estimate_count(X, far=far, rule=rule).as_dict()
    if as_json:
        print_json(est)
        return
    shown = lambda v: "not computed" if v is None else v  # noqa: E731
    print(f"endmembers: {est['p']}  (rule {est['rule']}, decided by {est['decided_by']}; HFC {est['hfc']}, "
          f"NWHFC {shown(est['nwhfc'])}, HySime {shown(est['hysime'])}; P_F {est['far']:g}; {est['n_pixels']} pixels, "
          f"{est['n_bands']} bands)")
    for note in est["notes"]:
        print(f"note: {note}")
    if est["dropped_bands"]:
        print(f"constant bands ignored: {[b + 1 for b in est['dropped_bands']]}")


def _pixel_table(scene, index):
    import numpy as np

    w = scene.sizes["x"]
    rows, cols = np.divmod(np.asarray(index), w)
    t = scene.rio.transform()
    xs = [t * (c + 0.5, r + 0.5) for r, c in zip(rows, cols, strict=True)]
    return rows, cols, xs


@app.command("endmembers")
def endmembers(
    cube: Path = typer.Argument(..., help="Image cube."),
    p: str = typer.Option("auto", "--p", help="Number of endmembers, or 'auto' (estimate_count)."),
    method: str = typer.Option("avca", help="vca, avca, atgp or nfindr."),
    seed: int = typer.Option(0, help="Random seed (VCA directions, AVCA restarts, pixel subset)."),
    restarts: int = typer.Option(10, help="AVCA restarts."),
    far: float = typer.Option(1e-3, help="False-alarm probability for the count (p auto)."),
    max_pixels: int = typer.Option(1_000_000, help="Use a seeded random subset above this many pixels."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    wavelengths: Path | None = typer.Option(None, help=_WL_HELP),
    bands: str | None = typer.Option(None, "--bands", metavar="RANGES", help=_BANDS_HELP),
    bin_size: int = typer.Option(1, "--bin", min=1, help=_BIN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Extract endmembers (original pixel spectra): endmembers.csv, endmembers.sli, pixels CSV, plot."""
    import csv

    import numpy as np

    from orbitml.errors import OrbitmlInputError
    from orbitml.io.atomic import atomic_path, check_writable
    from orbitml.io.provenance import write_run_info
    from orbitml.report.figures import spectra_figure
    from orbitml.scene import wavelengths as scene_wl
    from orbitml.spectra import SpectralLibrary, write_library
    from orbitml.unmix import EndmemberExtractor

    out = Path(out)
    names_out = ["endmembers.csv", "endmembers.sli", "endmembers.hdr", "endmember_pixels.csv", "endmembers.png"]
    for n in names_out:
        check_writable(out / n, overwrite)
    p_arg: int | str = p if p == "auto" else _int_or_error(p, "--p")
    scene, X, index = _load_pixels(cube, wavelengths, max_pixels, seed, bands, bin_size)
    with console.status(f"{method.upper()} on {X.shape[0]} pixels x {X.shape[1]} bands"):
        est = EndmemberExtractor(method, p=p_arg, random_state=seed, n_restarts=restarts, far=far).fit(X)
    flat = index[est.indices_]
    rows, cols, xy = _pixel_table(scene, flat)
    names = [f"em{i + 1}_r{r}_c{c}" for i, (r, c) in enumerate(zip(rows, cols, strict=True))]
    wl = scene_wl(scene)
    axis = wl if wl is not None else np.arange(1, X.shape[1] + 1, dtype=float)
    if wl is not None and not np.all(np.diff(wl) > 0):
        raise OrbitmlInputError("the cube's wavelengths are not ascending; cannot write a spectral library", cube)
    lib = SpectralLibrary(est.endmembers_, axis, names, metadata={"source": str(cube)})
    write_library(lib, out / "endmembers.csv", overwrite=overwrite)
    write_library(lib, out / "endmembers.sli", overwrite=overwrite)
    with atomic_path(out / "endmember_pixels.csv", overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            wr = csv.writer(f)
            wr.writerow(["name", "row", "col", "x", "y"])
            for n, r, c, (x, y) in zip(names, rows, cols, xy, strict=True):
                wr.writerow([n, int(r), int(c), repr(float(x)), repr(float(y))])
    fig = spectra_figure(axis, est.endmembers_, labels=names, title=f"{method.upper()} endmembers: {cube.name}",
                         offset=0.0)
    if wl is None:
        fig.axes[0].set_xlabel("band number / 1000")
    with atomic_path(out / "endmembers.png", overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    info = {k: v for k, v in est.info_.items() if k != "volumes"}
    write_run_info(out, "orbitml unmix endmembers",
                   {"method": method, "p": est.n_endmembers_, "p_requested": p, "restarts": restarts, "far": far,
                    "n_pixels": int(X.shape[0]), "info": info}, seed=seed, inputs=[str(cube)])
    if as_json:
        print_json({"endmembers": int(est.n_endmembers_), "method": method, "out": str(out),
                    "count": info.get("count")})
    console.print(f"{est.n_endmembers_} endmembers ({method}) -> {out}")
    if "count" in info and info["count"]:
        c = info["count"]
        console.print(f"count: HFC {c['hfc']}, NWHFC {c['nwhfc']}, HySime {c['hysime']} -> {c['p']}")


def _int_or_error(v: str, what: str) -> int:
    from orbitml.errors import OrbitmlInputError

    try:
        return int(v)
    except ValueError:
        raise OrbitmlInputError(f"{what} must be an integer or 'auto', got {v!r}") from None


def _read_endmembers(path: Path, scene):
    import numpy as np

    from orbitml.errors import OrbitmlInputError
    from orbitml.scene import wavelengths as scene_wl
    from orbitml.spectra import read_library

    lib = read_library(path)
    nb = scene.sizes["band"]
    if lib.n_bands != nb:
        raise OrbitmlInputError(f"the endmembers have {lib.n_bands} bands but the cube has {nb}; resample them "
                                "with 'orbitml library resample' first", path)
    wl = scene_wl(scene)
    if wl is not None and lib.wavelength.size > 1 and not np.allclose(lib.wavelength, wl, atol=0.05):
        if not np.allclose(lib.wavelength, np.arange(1, nb + 1)):  # band numbers: no wavelengths to compare
            raise OrbitmlInputError("the endmember wavelengths differ from the cube's; resample them with "
                                    "'orbitml library resample' first", path)
    if not np.isfinite(lib.spectra).all():
        raise OrbitmlInputError("the endmember spectra have missing values (NaN)", path)
    return lib


@app.command("abundances")
def abundances(
    cube: Path = typer.Argument(..., help="Image cube."),
    endmembers_file: Path | None = typer.Option(None, "--endmembers", help="Endmember library (.sli or .csv) on "
                                                 "the cube's bands, e.g. from 'orbitml unmix endmembers'."),
    library_file: Path | None = typer.Option(None, "--library", help="Spectral library (.sli, .csv, USGS) to unmix "
                                              "against: resampled onto the cube's bands when it covers them; the "
                                              "spectra used are kept."),
    method: str = typer.Option("fcls", help="fcls (non-negative, sum to one), nnls, ucls (--endmembers only), "
                                            "sunsal or clsunsal (--library)."),
    lam: float | None = typer.Option(None, "--lambda", help="Sparsity penalty of sunsal/clsunsal in the data's "
                                                             "units (default: the rule p sigma^2, see docs)."),
    classes: list[str] | None = typer.Option(None, "--class", metavar="NAME=PATTERN",
                                             help="A class of library spectra (endmember bundle) by name pattern; "
                                                  "repeat; the cube then holds one abundance band per class."),
    drop_incomplete: bool = typer.Option(False, "--drop-incomplete", help="Drop library spectra with missing "
                                                                         "values instead of refusing."),
    drop_duplicates: bool = typer.Option(False, "--drop-duplicates", help="Keep the first of identical library "
                                                                         "spectra instead of refusing."),
    min_abundance: float = typer.Option(1e-3, help="A library spectrum is used when it reaches this abundance in "
                                                   "some pixel."),
    max_pixels: int = typer.Option(20_000, help="clsunsal: pixels (seeded sample) on which the spectra are selected."),
    seed: int = typer.Option(0, help="Seed of the clsunsal pixel sample."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    format: str = typer.Option("envi", "--format", help="envi or gtiff."),
    rgb: str = typer.Option("1,2,3", help="Endmembers (1-based numbers) shown as R,G,B in the composite."),
    rows_per_block: int = typer.Option(256, help="Rows read and unmixed at a time."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    wavelengths: Path | None = typer.Option(None, help=_WL_HELP),
) -> None:
    """Abundance cube (ENVI or GeoTIFF with map info) and an RGB composite of the first three endmembers.

    With --library: abundances against a whole spectral library (FCLS, NNLS, SUnSAL, CLSUnSAL), one band per
    spectrum used (largest total abundance first) or per --class, a last band residual_rmse, and
    selected_spectra.csv (the spectra used, their totals) plus selected_library.csv (their spectra).
    """
    import numpy as np

    from orbitml.errors import OrbitmlInputError

    if (endmembers_file is None) == (library_file is None):
        raise OrbitmlInputError("give exactly one of --endmembers (a few endmembers) or --library (a spectral "
                                "library)")
    if library_file is not None:
        from orbitml.cli._unmix_library import library_abundances

        library_abundances(cube, library_file, method=method, lam=lam, classes=classes or [], out=out,
                           fmt=format, rows_per_block=rows_per_block, overwrite=overwrite, wavelengths=wavelengths,
                           drop_incomplete=drop_incomplete, drop_duplicates=drop_duplicates,
                           min_abundance=min_abundance, max_pixels=max_pixels, seed=seed, rgb=rgb)
        return
    if lam is not None or classes:
        raise OrbitmlInputError("--lambda and --class apply to --library")
    from rich.progress import Progress

    from orbitml.errors import OrbitmlInputError
    from orbitml.io import write_scene
    from orbitml.io.atomic import atomic_path, check_writable
    from orbitml.io.provenance import write_run_info
    from orbitml.scene import make_scene, pixels
    from orbitml.unmix import fcls, nnls, ucls

    fn = {"fcls": fcls, "nnls": nnls, "ucls": ucls}.get(method)
    if fn is None:
        raise OrbitmlInputError(f"--method must be fcls, nnls or ucls, got {method!r}")
    fmt = format.lower()
    if fmt not in ("envi", "gtiff"):
        raise OrbitmlInputError(f"--format must be envi or gtiff, got {format!r}")
    out = Path(out)
    main = out / ("abundances.tif" if fmt == "gtiff" else "abundances.img")
    for pth in (main, out / "abundances_rgb.png"):
        check_writable(pth, overwrite)
    scene = _open(cube, wavelengths, chunks={"band": -1, "y": max(1, rows_per_block), "x": -1})
    lib = _read_endmembers(endmembers_file, scene)
    E = lib.spectra.astype(np.float64)
    p = E.shape[0]
    try:
        rgb_idx = [int(v) - 1 for v in rgb.split(",") if v.strip()]
    except ValueError:
        raise OrbitmlInputError(f"--rgb must be endmember numbers like 1,2,3, got {rgb!r}") from None
    if not 1 <= len(rgb_idx) <= 3 or any(not 0 <= i < p for i in rgb_idx):
        raise OrbitmlInputError(f"--rgb must name one to three of the {p} endmembers (1-{p}), got {rgb!r}")
    h, w = scene.sizes["y"], scene.sizes["x"]
    from orbitml.io.integrity import check_load

    check_load((p + 3) * h * w * 4, f"{p} abundance bands of a {h} x {w} cube", cube,
               "cut a window first (e.g. gdal_translate -srcwin)")
    A = np.full((p, h * w), np.nan, dtype=np.float32)
    sq, n_valid = 0.0, 0
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"{method.upper()} unmixing", total=h)
        for r0 in range(0, h, rows_per_block):
            block = scene.isel(y=slice(r0, r0 + rows_per_block)).load()
            X, idx = pixels(block)
            if X.shape[0]:
                a = fn(X, E)
                A[:, r0 * w + idx] = a.T
                sq += float(np.sum((a @ E - X) ** 2))
                n_valid += X.shape[0]
            prog.update(task, advance=block.sizes["y"])
    if n_valid == 0:
        raise OrbitmlInputError("no valid pixel in the cube", cube)
    ab = make_scene(A.reshape(p, h, w), band_names=lib.names, crs=scene.rio.crs, transform=scene.rio.transform(),
                    nodata=np.nan, attrs={"units": "abundance fraction", "method": method,
                                          "source": str(cube), "endmembers": str(endmembers_file)})
    write_scene(ab, main, format=fmt, overwrite=overwrite)
    img = np.nan_to_num(np.clip(A[rgb_idx].reshape(-1, h, w), 0, 1), nan=0.0).transpose(1, 2, 0)
    if img.shape[2] < 3:
        img = np.concatenate([img, np.zeros((h, w, 3 - img.shape[2]), dtype=img.dtype)], axis=2)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_path(out / "abundances_rgb.png", overwrite=overwrite) as tmp:
        plt.imsave(tmp, img, format="png")
    rmse = float(np.sqrt(sq / (n_valid * E.shape[1])))
    shown = [lib.names[i] for i in rgb_idx]
    write_run_info(out, "orbitml unmix abundances",
                   {"method": method, "endmembers": lib.names, "rgb": shown, "format": fmt,
                    "n_valid_pixels": n_valid, "reconstruction_rmse": rmse}, inputs=[str(cube), str(endmembers_file)])
    console.print(f"{p} abundance bands ({method}) for {n_valid} pixels -> {main}; RGB = {', '.join(shown)}; "
                  f"reconstruction RMSE {rmse:.4g}")
