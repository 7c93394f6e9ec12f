"""``orbitml library ...``: inspect, resample and augment spectral libraries."""

from __future__ import annotations

from pathlib import Path

import typer

from orbitml.cli._common import console, print_json

app = typer.Typer(help="Spectral libraries (ENVI .sli, USGS splib07 ASCII, CSV): info, resample, augment.",
                  no_args_is_help=True)

_MAX_OUTPUT_VALUES = 400_000_000  # 1.6 GB of float32: beyond this, ask the user to select classes


@app.command("info")
def info(
    lib_path: Path = typer.Argument(..., metavar="LIB", help="Library file (.sli, splib07 .txt record, .csv)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    show: int = typer.Option(10, help="How many spectrum names to list."),
) -> None:
    """Describe a spectral library: spectra, bands, wavelength range, FWHM, missing values."""
    import numpy as np

    from orbitml.spectra import read_library

    lib = read_library(lib_path)
    missing = ~np.isfinite(lib.spectra)
    d = {
        "path": str(lib_path),
        "format": lib.metadata.get("format"),
        "n_spectra": len(lib),
        "n_bands": lib.n_bands,
        "wavelength_nm": [float(lib.wavelength[0]), float(lib.wavelength[-1])] if lib.n_bands else None,
        "fwhm": lib.fwhm is not None,
        "spectra_with_missing_values": int(missing.any(axis=1).sum()),
        "names": lib.names[:show],
    }
    if as_json:
        print_json(d)
        return
    wl = d["wavelength_nm"]
    print(f"{lib_path.name}: {d['n_spectra']} spectra x {d['n_bands']} bands"
          + (f", {wl[0]:.2f}-{wl[1]:.2f} nm" if wl else "") + (", with FWHM" if d["fwhm"] else ", no FWHM"))
    print(f"spectra with missing values: {d['spectra_with_missing_values']}")
    for n in d["names"]:
        print(f"  {n}")
    if len(lib) > show:
        print(f"  ... ({len(lib) - show} more)")


def _sensor_bands(path: Path):
    """Band centres and FWHM (nm) of a sensor from an ENVI header or a CSV table."""
    import csv

    import numpy as np

    from orbitml.errors import OrbitmlInputError

    if not path.exists():
        raise OrbitmlInputError("sensor band file not found", path)
    hdr = path if path.suffix.lower() == ".hdr" else path.with_suffix(".hdr")
    with open(path, "rb") as f:
        is_envi = f.read(4) == b"ENVI"
    if path.suffix.lower() == ".hdr" or (hdr.exists() and not is_envi and path.suffix.lower() != ".csv"):
        from orbitml.io.envi import header_facts

        facts = header_facts(hdr)
        wl, fw = facts["wavelength"], facts["fwhm"]
        if wl is None:
            raise OrbitmlInputError("the ENVI header has no wavelength field", hdr)
    else:
        from orbitml.io.text import read_text

        rows = [r for r in csv.reader(read_text(path, "sensor band table").splitlines())
                if r and any(c.strip() for c in r)]
        if len(rows) < 2:
            raise OrbitmlInputError("expected a CSV with a header row and one row per band", path)
        head = [h.strip().lower() for h in rows[0]]
        wl_col = next((i for i, h in enumerate(head) if h.startswith(("wavelength", "centre", "center"))), None)
        fw_col = next((i for i, h in enumerate(head) if h.startswith(("fwhm", "bandwidth"))), None)
        if wl_col is None:
            raise OrbitmlInputError(f"no wavelength column in the CSV header {rows[0]}", path)
        try:
            wl = np.array([float(r[wl_col]) for r in rows[1:]])
            fw = None if fw_col is None else np.array([float(r[fw_col]) for r in rows[1:]])
        except (ValueError, IndexError) as exc:
            raise OrbitmlInputError(f"bad number in the sensor table ({exc})", path) from None
        if "_um" in head[wl_col] or "micro" in head[wl_col] or np.nanmax(wl) < 100:
            wl = wl * 1000.0
            fw = None if fw is None else fw * 1000.0
    from orbitml.io.integrity import check_finite_wavelengths

    check_finite_wavelengths(wl, path)
    if fw is None:
        if wl.size < 2:
            raise OrbitmlInputError("no FWHM and a single band: cannot infer band widths", path)
        fw = np.gradient(wl)
        console.print("no FWHM given: using the band spacing as the FWHM")
    return np.asarray(wl, dtype=float), np.abs(np.asarray(fw, dtype=float))


@app.command("resample")
def resample(
    lib_path: Path = typer.Argument(..., metavar="LIB", help="Library file."),
    to: Path = typer.Option(..., "--to", help="Sensor bands: an ENVI header (of a cube or library) or a CSV with "
                                              "wavelength (nm) and fwhm columns."),
    out: Path = typer.Option(..., "--out", help="Output library (.sli or .csv)."),
    min_support: float = typer.Option(0.5, help="Least fraction of a band's response on valid samples."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Convolve a library to a sensor's bands (Gaussian responses from centres and FWHM)."""
    import numpy as np

    from orbitml.io.atomic import check_writable
    from orbitml.spectra import read_library, resample_to_bands, write_library

    check_writable(out, overwrite)
    lib = read_library(lib_path)
    import warnings

    wl, fw = _sensor_bands(to)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = resample_to_bands(lib, None, wl, fw, min_support=min_support)
    for w in caught:
        console.print(f"note: {w.message}")
    write_library(res, out, overwrite=overwrite)
    n_missing = int((~np.isfinite(res.spectra)).any(axis=1).sum())
    console.print(f"{len(res)} spectra resampled to {wl.size} bands -> {out}"
                  + (f"; {n_missing} have bands outside their coverage (NaN)" if n_missing else ""))


@app.command("augment")
def augment(
    lib_path: Path = typer.Argument(..., metavar="LIB", help="Library file: one class per spectrum."),
    out: Path = typer.Option(..., "--out", help="Output library (.sli or .csv); spectra are named by class."),
    n_per_class: int = typer.Option(1000, "--n-per-class", help="Augmented spectra per class."),
    classes: list[str] | None = typer.Option(
        None, "--class", metavar="NAME=PATTERN",
        help="A mineral class: its name and a regular expression on spectrum names (repeat for each class). "
             "All spectra matching PATTERN form one class (an endmember bundle)."),
    select: str | None = typer.Option(None, help="Regular expression on spectrum names: spectra to use, each its "
                                                 "own class (use --class to group spectra into classes)."),
    offset: float = typer.Option(0.02, help="Additive offsets uniform in +-OFFSET."),
    scale: tuple[float, float] = typer.Option((0.85, 1.15), help="Illumination scaling range LOW HIGH."),
    tilt: float = typer.Option(0.05, help="Continuum tilt: largest relative slope across the range."),
    min_fraction: float = typer.Option(0.7, help="Least fraction of the class in a sub-pixel mixture (1 = none)."),
    snr: float = typer.Option(200.0, help="Per-band SNR of the added noise (signal dependent)."),
    snr_table: Path | None = typer.Option(None, help="CSV with wavelength and snr columns: a per-band SNR model."),
    background: Path | None = typer.Option(None, help="Library of background spectra to mix with "
                                                      "(default: the other classes)."),
    include_original: bool = typer.Option(False, help="Keep each clean spectrum as the first of its class."),
    seed: int = typer.Option(0, help="Random seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Augment a library: offsets, scaling, tilt, sub-pixel mixtures and per-band noise, seeded."""
    import time

    import numpy as np

    from orbitml.errors import OrbitmlInputError
    from orbitml.io.atomic import check_writable
    from orbitml.io.provenance import write_run_info
    from orbitml.spectra import SpectralLibrary, read_library, write_library
    from orbitml.spectra.augment import Compose, augment_library

    check_writable(out, overwrite)
    lib = read_library(lib_path)
    if classes and select:
        raise OrbitmlInputError("give either --class NAME=PATTERN (grouped classes) or --select, not both")
    if classes:
        return _augment_grouped(lib, lib_path, out, classes, n_per_class, offset, scale, tilt, min_fraction, snr,
                                snr_table, background, include_original, seed, overwrite)
    if select:
        lib = lib.select(select)
        if len(lib) == 0:
            raise OrbitmlInputError(f"no spectrum name matches {select!r}", lib_path)
    complete = np.isfinite(lib.spectra).all(axis=1)
    if not complete.all():
        console.print(f"skipping {int((~complete).sum())} spectra with missing values (NaN bands)")
        lib = lib.take(np.flatnonzero(complete))
    if len(lib) == 0:
        raise OrbitmlInputError("no complete spectrum left to augment", lib_path)
    total = len(lib) * int(n_per_class) * lib.n_bands
    if total > _MAX_OUTPUT_VALUES:
        raise OrbitmlInputError(f"{len(lib)} classes x {n_per_class} spectra x {lib.n_bands} bands is too large "
                                "for one library file; use --select or a smaller --n-per-class", lib_path)
    steps, bg = _augmenter(lib, offset, scale, tilt, min_fraction, snr, snr_table, background)
    t0 = time.perf_counter()
    X, y = augment_library(lib.spectra, n_per_class, Compose(steps), labels=lib.names, wavelength=lib.wavelength,
                           background=bg, include_original=include_original, random_state=seed)
    dt = time.perf_counter() - t0
    outlib = SpectralLibrary(X, lib.wavelength, [str(v) for v in y], lib.fwhm,
                             {"source": str(lib_path), "augmented": True})
    write_library(outlib, out, overwrite=overwrite)
    write_run_info(out.parent, "orbitml library augment",
                   {"n_per_class": n_per_class, "select": select, "offset": offset, "scale": list(scale),
                    "tilt": tilt, "min_fraction": min_fraction, "snr": snr,
                    "snr_table": None if snr_table is None else str(snr_table),
                    "background": None if background is None else str(background),
                    "include_original": include_original, "classes": lib.names, "output": str(out)},
                   seed=seed, inputs=[str(lib_path)], name=f"{out.stem}.run.json")
    console.print(f"{len(lib)} classes x {n_per_class} spectra in {dt:.2f} s -> {out}")


def _augmenter(lib, offset, scale, tilt, min_fraction, snr, snr_table, background):
    """The augmentation steps for ``lib``'s bands and the background spectra (or None)."""
    import numpy as np

    from orbitml.errors import OrbitmlInputError
    from orbitml.spectra import read_library
    from orbitml.spectra.augment import BandNoise, Mixture, Offset, Scale, Tilt

    snr_model = snr if snr_table is None else np.interp(lib.wavelength, *_snr_table(snr_table))
    bg = None
    if background is not None:
        bgl = read_library(background)
        if bgl.n_bands != lib.n_bands or not np.allclose(bgl.wavelength, lib.wavelength, atol=0.05):
            raise OrbitmlInputError("background spectra are on other bands than the library; resample them first",
                                    background)
        bg = bgl.spectra[np.isfinite(bgl.spectra).all(axis=1)]
    steps = [Mixture(min_fraction=min_fraction)] if min_fraction < 1.0 else []
    steps += [Offset(offset), Scale(*scale), Tilt(tilt), BandNoise(snr=snr_model)]
    return steps, bg


def _parse_classes(specs: list[str]) -> list[tuple[str, str]]:
    from orbitml.errors import OrbitmlInputError

    out = []
    for spec in specs:
        name, sep, pattern = spec.partition("=")
        if not sep or not name.strip() or not pattern.strip():
            raise OrbitmlInputError(f"--class wants NAME=PATTERN, got {spec!r}")
        out.append((name.strip(), pattern.strip()))
    return out


def _augment_grouped(lib, lib_path, out, specs, n_per_class, offset, scale, tilt, min_fraction, snr, snr_table,
                     background, include_original, seed, overwrite) -> None:
    import time

    import numpy as np

    from orbitml.errors import OrbitmlInputError
    from orbitml.io.provenance import write_run_info
    from orbitml.spectra import SpectralLibrary, write_library
    from orbitml.spectra.augment import Compose, augment_classes

    complete = np.isfinite(lib.spectra).all(axis=1)
    if not complete.all():
        console.print(f"skipping {int((~complete).sum())} spectra with missing values (NaN bands)")
        lib = lib.take(np.flatnonzero(complete))
    sub, cls, names = lib.group(_parse_classes(specs))
    if len(names) * int(n_per_class) * lib.n_bands > _MAX_OUTPUT_VALUES:
        raise OrbitmlInputError(f"{len(names)} classes x {n_per_class} spectra x {lib.n_bands} bands is too large "
                                "for one library file; use a smaller --n-per-class", lib_path)
    steps, bg = _augmenter(sub, offset, scale, tilt, min_fraction, snr, snr_table, background)
    t0 = time.perf_counter()
    X, y = augment_classes(sub.spectra, cls, n_per_class, Compose(steps), class_names=names,
                           wavelength=sub.wavelength, background=bg, include_original=include_original,
                           random_state=seed)
    dt = time.perf_counter() - t0
    write_library(SpectralLibrary(X, sub.wavelength, [str(v) for v in y], sub.fwhm,
                                  {"source": Path(lib_path).name, "augmented": True}), out, overwrite=overwrite)
    members = {n: [sub.names[i] for i in np.flatnonzero(cls == c)] for c, n in enumerate(names)}
    write_run_info(out.parent, "orbitml library augment",
                   {"n_per_class": n_per_class, "classes": dict(_parse_classes(specs)), "members": members,
                    "offset": offset, "scale": list(scale), "tilt": tilt, "min_fraction": min_fraction, "snr": snr,
                    "snr_table": None if snr_table is None else str(snr_table),
                    "background": None if background is None else str(background),
                    "include_original": include_original, "output": str(out)},
                   seed=seed, inputs=[str(lib_path)], name=f"{out.stem}.run.json")
    for n in names:
        console.print(f"  {n}: {len(members[n])} library spectra")
    console.print(f"{len(names)} classes x {n_per_class} spectra in {dt:.2f} s -> {out}")


def _snr_table(path: Path):
    import csv

    import numpy as np

    from orbitml.errors import OrbitmlInputError

    if not path.exists():
        raise OrbitmlInputError("SNR table not found", path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    head = [h.strip().lower() for h in rows[0]] if rows else []
    try:
        wi = next(i for i, h in enumerate(head) if h.startswith("wavelength"))
        si = next(i for i, h in enumerate(head) if h.startswith("snr"))
        wl = np.array([float(r[wi]) for r in rows[1:]])
        sn = np.array([float(r[si]) for r in rows[1:]])
    except (StopIteration, ValueError, IndexError):
        raise OrbitmlInputError("expected a CSV with 'wavelength_nm' and 'snr' columns", path) from None
    if "_um" in head[wi] or wl.max() < 100:
        wl = wl * 1000.0
    order = np.argsort(wl)
    if not (sn > 0).all():
        raise OrbitmlInputError("SNR values must be positive", path)
    return wl[order], sn[order]
