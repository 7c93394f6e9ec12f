"""``orbitml unmix abundances CUBE --library LIB``: abundances against a whole spectral library."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from orbitml.cli._common import console
from orbitml.errors import OrbitmlInputError

_METHODS = ("fcls", "nnls", "sunsal", "clsunsal")


def parse_classes(items: list[str], library_file: Path) -> dict[str, str] | None:
    """``["Kaolinite=kaolin", ...]`` -> ``{"Kaolinite": "kaolin"}`` (checked before any work)."""
    if not items:
        return None
    out: dict[str, str] = {}
    for it in items:
        name, sep, pattern = it.partition("=")
        if not sep or not name.strip() or not pattern.strip():
            raise OrbitmlInputError(f"--class wants NAME=PATTERN, got {it!r}")
        try:
            re.compile(pattern)
        except re.error as e:
            raise OrbitmlInputError(f"--class {name}: {pattern!r} is not a valid regular expression ({e})") from None
        if name.strip() in out:
            raise OrbitmlInputError(f"--class {name.strip()!r} given twice")
        out[name.strip()] = pattern.strip()
    return out


def _load_library(library_file: Path, scene, classes, drop_incomplete, drop_duplicates, notes):
    from orbitml.scene import wavelengths as scene_wl
    from orbitml.spectra import read_library
    from orbitml.unmix import prepare_library

    lib = read_library(library_file)
    if classes:  # group first: only the classes' spectra need to be complete and distinct
        try:
            lib, class_index, class_names = lib.group(classes)
        except OrbitmlInputError as e:
            raise OrbitmlInputError(str(e.args[0] if e.args else e), library_file) from None
        lib.metadata["class"] = [class_names[i] for i in class_index]
    wl = scene_wl(scene)
    fw = np.asarray(scene.coords["fwhm"].values, float) if "fwhm" in scene.coords else None
    if fw is not None and not (np.isfinite(fw).all() and (fw > 0).all()):
        fw = None
    n_before = len(lib)
    lib = prepare_library(lib, wl, fw, n_bands=scene.sizes["band"], source=library_file,
                          drop_incomplete=drop_incomplete, drop_duplicates=drop_duplicates, notes=notes)
    if len(lib) < n_before and classes:
        left = set(lib.metadata["class"])
        missing = [c for c in classes if c not in left]
        if missing:
            raise OrbitmlInputError(f"class(es) {missing} have no usable spectrum left after dropping incomplete or "
                                    "duplicate spectra", library_file)
    return lib


def _sample(scene, max_pixels: int, seed: int) -> np.ndarray:
    """Valid pixels of a seeded random set of whole rows (about ``max_pixels``), read by rows, not whole."""
    from orbitml.scene import pixels

    h, w = scene.sizes["y"], scene.sizes["x"]
    n_rows = min(h, max(1, -(-max_pixels // w)))
    rows = np.sort(np.random.default_rng(seed).choice(h, n_rows, replace=False))
    X, _ = pixels(scene.isel(y=rows).load())
    if X.shape[0] > max_pixels:
        X = X[np.sort(np.random.default_rng(seed).choice(X.shape[0], max_pixels, replace=False))]
    return X


def library_abundances(cube: Path, library_file: Path, *, method: str, lam, classes: list[str], out: Path, fmt: str,
                       rows_per_block: int, overwrite: bool, wavelengths, drop_incomplete: bool,
                       drop_duplicates: bool, min_abundance: float, max_pixels: int, seed: int, rgb: str) -> None:
    import csv
    import json

    from rich.progress import Progress
    from scipy import sparse as sp

    from orbitml.io import open_scene, write_scene
    from orbitml.io.atomic import atomic_path, check_writable
    from orbitml.io.provenance import write_run_info
    from orbitml.scene import make_scene, pixels
    from orbitml.spectra import write_library
    from orbitml.unmix import clsunsal, fcls, nnls, sunsal
    from orbitml.unmix.abundance import _check_penalty

    if method not in _METHODS:
        raise OrbitmlInputError(f"--method with --library must be one of {', '.join(_METHODS)}, got {method!r}")
    if lam is not None:
        lam = _check_penalty(lam, "--lambda")
        if method in ("fcls", "nnls") and lam != 0:
            raise OrbitmlInputError(f"--lambda applies to sunsal and clsunsal, not to {method}")
    if not 0 <= min_abundance < 1:
        raise OrbitmlInputError(f"--min-abundance must lie in [0, 1), got {min_abundance}")
    fmt = fmt.lower()
    if fmt not in ("envi", "gtiff"):
        raise OrbitmlInputError(f"--format must be envi or gtiff, got {fmt!r}")
    class_map = parse_classes(classes, library_file)
    out = Path(out)
    main = out / ("abundances.tif" if fmt == "gtiff" else "abundances.img")
    products = [main, out / "selected_spectra.csv", out / "selected_library.csv", out / "abundances_rgb.png"]
    for pth in products:
        check_writable(pth, overwrite)
    notes: list[str] = []
    scene = open_scene(cube, wavelengths=wavelengths, chunks={"band": -1, "y": max(1, rows_per_block), "x": -1})
    h, w = scene.sizes["y"], scene.sizes["x"]
    from orbitml.io.integrity import check_load

    how = "cut a window first (e.g. gdal_translate -srcwin), or group the spectra with --class"
    # before any pixel is read: the residual band and at least one dense abundance band (and its copy)
    check_load(3 * h * w * 4, f"the abundance cube of a {h} x {w} image", cube, how)
    lib = _load_library(library_file, scene, class_map, drop_incomplete, drop_duplicates, notes)
    for n in notes:
        console.print(n)
    E = lib.spectra.astype(np.float64)
    p = E.shape[0]
    lam_used = lam
    support = np.arange(p)
    if method == "clsunsal":  # the l2,1 penalty couples all pixels: select on a seeded sample, then NNLS
        X = _sample(scene, max_pixels, seed)
        if X.shape[0] == 0:
            raise OrbitmlInputError("no valid pixel in the cube", cube)
        with console.status(f"CLSUnSAL selection on {X.shape[0]} pixels x {p} spectra"):
            As, info = clsunsal(X, E, lam, return_info=True)
        lam_used = info.lam
        notes += info.notes + [f"CLSUnSAL selected the spectra on {X.shape[0]} pixels; every pixel's abundances "
                               "are the non-negative least squares on them"]
        support = np.flatnonzero(As.max(axis=0) >= max(min_abundance, 1e-12))
        if support.size == 0:
            raise OrbitmlInputError(f"CLSUnSAL with lambda {lam_used:.3g} selected no spectrum; lower --lambda")
    elif method == "sunsal" and lam is None:
        X = _sample(scene, max_pixels, seed)
        if X.shape[0] == 0:
            raise OrbitmlInputError("no valid pixel in the cube", cube)
        from orbitml.unmix import lambda_rule

        rule = lambda_rule(X, E)
        lam_used = rule.lam
        notes += [f"lambda {lam_used:.4g} by the {rule.method}"] + rule.notes
    Es = E[support]
    rows_i, cols_i, vals = [], [], []
    resid = np.full(h * w, np.nan, dtype=np.float32)
    sq, n_valid = 0.0, 0
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"{method.upper()} against {Es.shape[0]} library spectra", total=h)
        for r0 in range(0, h, rows_per_block):
            block = scene.isel(y=slice(r0, r0 + rows_per_block)).load()
            X, idx = pixels(block)
            if X.shape[0]:
                if method == "fcls":
                    a = fcls(X, Es)
                elif method == "sunsal":
                    a = sunsal(X, Es, lam_used)
                else:
                    a = nnls(X, Es)
                res = np.sqrt(np.mean((a @ Es - X) ** 2, axis=1))
                resid[r0 * w + idx] = res
                sq += float(np.sum(res**2))
                n_valid += X.shape[0]
                nz_r, nz_c = np.nonzero(a > 0)
                rows_i.append(r0 * w + idx[nz_r])
                cols_i.append(nz_c)
                vals.append(a[nz_r, nz_c].astype(np.float32))
            prog.update(task, advance=block.sizes["y"])
    if n_valid == 0:
        raise OrbitmlInputError("no valid pixel in the cube", cube)
    S = sp.csc_array((np.concatenate(vals), (np.concatenate(rows_i), np.concatenate(cols_i))),
                     shape=(h * w, Es.shape[0]))
    m = S.max(axis=0)
    amax = m.toarray().ravel() if hasattr(m, "toarray") else np.asarray(m).ravel()
    total = np.asarray(S.sum(axis=0)).ravel()
    used = np.flatnonzero(amax >= max(min_abundance, 1e-12))
    order = used[np.argsort(-total[used], kind="stable")]
    lib_idx = support[order]
    cls = lib.metadata.get("class")
    n_out = (len(class_map) if class_map else order.size) + 1
    check_load(2 * n_out * h * w * 4, f"{n_out} dense abundance bands of a {h} x {w} image", cube, how)
    if class_map:
        class_names = list(class_map)
        ci = np.array([class_names.index(c) for c in np.asarray(cls)[support]])
        onehot = sp.csc_array((np.ones(ci.size), (np.arange(ci.size), ci)), shape=(ci.size, len(class_names)))
        bands = (S @ onehot).toarray().T.astype(np.float32)
        band_names = list(class_names)
    else:
        bands = S[:, order].toarray().T.astype(np.float32) if order.size else np.zeros((0, h * w), np.float32)
        band_names = [lib.names[i] for i in lib_idx]
    invalid = np.isnan(resid)
    bands[:, invalid] = np.nan
    cube_data = np.concatenate([bands, resid[None, :]], axis=0).reshape(-1, h, w)
    simulated = bool(scene.attrs.get("simulated"))
    attrs = {"units": "abundance fraction; last band residual RMSE (data units)", "method": method,
             "source": str(cube), "library": str(library_file)}
    ab = make_scene(cube_data, band_names=band_names + ["residual_rmse"], crs=scene.rio.crs,
                    transform=scene.rio.transform(), nodata=np.nan, attrs=attrs)
    write_scene(ab, main, format=fmt, overwrite=overwrite)
    with atomic_path(out / "selected_spectra.csv", overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            wr = csv.writer(f)
            wr.writerow(["rank", "library_index", "name", "class", "total_abundance", "mean_abundance",
                         "max_abundance", "pixels_at_or_above_min"])
            count = np.asarray((S >= max(min_abundance, 1e-12)).sum(axis=0)).ravel()
            for rank, (o, li) in enumerate(zip(order, lib_idx, strict=True), 1):
                wr.writerow([rank, int(li) + 1, lib.names[li], "" if cls is None else cls[li],
                             repr(float(total[o])), repr(float(total[o] / n_valid)), repr(float(amax[o])),
                             int(count[o])])
    if lib_idx.size:
        write_library(lib.take(lib_idx), out / "selected_library.csv", overwrite=overwrite)
    else:
        check_writable(out / "selected_library.csv", overwrite)
    img = np.nan_to_num(np.clip(bands[:3], 0, 1), nan=0.0).reshape(-1, h, w).transpose(1, 2, 0)
    if img.shape[2] < 3:
        img = np.concatenate([img, np.zeros((h, w, 3 - img.shape[2]), dtype=img.dtype)], axis=2)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_path(out / "abundances_rgb.png", overwrite=overwrite) as tmp:
        plt.imsave(tmp, img, format="png")
    rmse = float(np.sqrt(sq / n_valid))
    params = {"method": method, "library": str(library_file), "lambda": lam_used, "classes": class_map,
              "n_library_spectra": p, "n_selected": int(lib_idx.size), "selected": [lib.names[i] for i in lib_idx],
              "bands": band_names + ["residual_rmse"], "min_abundance": min_abundance, "format": fmt,
              "n_valid_pixels": n_valid, "reconstruction_rmse": rmse, "notes": notes, "simulated_input": simulated}
    write_run_info(out, "orbitml unmix abundances --library", json.loads(json.dumps(params, default=float)),
                   seed=seed, inputs=[str(cube), str(library_file)])
    shown = ", ".join(band_names[:5]) + (" ..." if len(band_names) > 5 else "")
    console.print(f"{method.upper()}: {lib_idx.size} of {p} library spectra used, {len(band_names)} abundance bands "
                  f"({shown}) + residual_rmse for {n_valid} pixels -> {main}; reconstruction RMSE {rmse:.4g}")
