"""Georeferenced products of a classified CRISM image, and its HTML page.

Written into one folder: ``class_map`` (int16 codes, 0 unclassified, -1 no data), ``confidence``
(float32, NaN no data), ``ratioed`` (float32 cube with wavelengths) - GeoTIFF or ENVI with the
product's CRS and transform - plus ``regions.csv``, ``region_spectra.csv``, ``regions.geojson``,
``classes.csv`` and ``report.html``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from orbitml.crism import classes as cc
from orbitml.crism.pipeline import CLASS_NODATA, CrismResult
from orbitml.io.atomic import atomic_path
from orbitml.scene import make_scene

SIMULATED_DESCRIPTION = "simulated CRISM spectra (orbitml.crism.simdata)"


def training_data_card(simulated: bool, labelled=None, bland=None) -> dict:
    """The model card's ``training_data`` entry (read by :func:`orbitml.nn.weights.simulated_notice`)."""
    if simulated:
        return {"simulated": True, "simulated_description": SIMULATED_DESCRIPTION,
                "trained_on": f"{SIMULATED_DESCRIPTION}: a demonstration model, not for science"}
    return {"simulated": False, "labelled": str(labelled) if labelled else None,
            "bland": str(bland) if bland else None,
            "trained_on": f"crism_ml-format training files: labelled {labelled}, bland {bland}"}


def model_notice(card: dict | None) -> str | None:
    """"demo model: not for science (...)" for a model trained on simulated data, else None."""
    from orbitml.nn.weights import simulated_notice

    if not card:
        return None
    why = simulated_notice(card)
    if why is None and (card.get("training") or {}).get("labelled") == "simulated":
        why = f"model trained on {SIMULATED_DESCRIPTION}: not validated on real observations"
    return f"demo model: not for science ({why})" if why else None


def _geo(template):
    if template is None:
        return None, None
    return template.rio.crs, template.rio.transform()


def write_products(result: CrismResult, outdir: Path, template=None, fmt: str = "gtiff",
                   overwrite: bool = False, name: str = "image", notice: str | None = None) -> dict[str, Path]:
    """Write maps, cube and region tables; returns the written paths by key.

    ``notice`` (a demo-model warning) and the ratio method go into every raster's tags / ENVI
    description.
    """
    from orbitml.io import write_scene

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    crs, transform = _geo(template)
    ext = ".tif" if fmt in ("gtiff", "cog") else ".img"
    from orbitml.io.classmap import write_class_map

    source = Path(str(getattr(template, "attrs", {}).get("source", "") or "")).name
    attrs = {"instrument": "CRISM", "product_id": name, "source": source,
             "processing": f"ratio_method={result.ratio_method}"}
    if notice:
        attrs["notice"] = notice
    paths = {}
    table = cc.class_table()
    paths["class_map"] = write_class_map(
        result.class_map, outdir / f"class_map{ext}", table.names, table.colours, crs=crs, transform=transform,
        invalid=result.class_map == CLASS_NODATA, fmt="envi" if ext == ".img" else "gtiff", overwrite=overwrite,
        attrs={"ORBITML_INSTRUMENT": "CRISM", "ORBITML_PRODUCT_ID": name, "ORBITML_UNITS": "crism_ml class code",
               "ORBITML_RATIO_METHOD": result.ratio_method,
               "ORBITML_UNKNOWN_FRACTION": f"{result.unknown_fraction:.4f}",
               **({"ORBITML_NOTICE": notice} if notice else {})})
    cf = make_scene(result.confidence.astype(np.float32), crs=crs, transform=transform, nodata=np.nan,
                    band_names=["confidence"], attrs={**attrs, "units": "probability"})
    paths["confidence"] = write_scene(cf, outdir / f"confidence{ext}", fmt, overwrite=overwrite)
    cube = np.moveaxis(result.ratioed, -1, 0)
    rs = make_scene(cube, wavelength=result.wavelengths, crs=crs, transform=transform, nodata=np.nan,
                    attrs={**attrs, "units": "ratioed I/F"})
    paths["ratioed"] = write_scene(rs, outdir / f"ratioed{ext}", fmt, overwrite=overwrite)
    paths.update(write_region_tables(result, outdir, transform, crs, overwrite))
    with atomic_path(outdir / "classes.csv", overwrite=True) as tmp:
        with open(tmp, "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["code", "name", "broad", "family", "trained_as", "merged_as", "rare"])
            wr.writerow([0, "unclassified", "unclassified", "", "", "", ""])
            wr.writerow([cc.UNKNOWN, cc.UNKNOWN_NAME, "unknown", "", "", "", ""])
            for c in cc.CLASSES.values():
                wr.writerow([c.code, c.name, c.broad, c.family, c.train_as, c.merge_as, int(c.rare)])
    paths["classes"] = outdir / "classes.csv"
    return paths


def _xy(transform, row: float, col: float) -> tuple[float, float]:
    if transform is None:
        return col + 0.5, row + 0.5
    x, y = transform * (col + 0.5, row + 0.5)
    return float(x), float(y)


def write_region_tables(result: CrismResult, outdir: Path, transform=None, crs=None,
                        overwrite: bool = False) -> dict[str, Path]:
    outdir = Path(outdir)
    rows = []
    for r in result.regions:
        x, y = _xy(transform, r.row, r.col)
        rows.append({"region": r.id, "code": r.code, "name": r.name, "broad": r.broad, "n_pixels": r.n_pixels,
                     "n_columns": r.n_columns, "mean_confidence": round(r.mean_confidence, 4),
                     "row": round(r.row, 2), "col": round(r.col, 2), "x": x, "y": y,
                     "row0": r.bbox[0], "col0": r.bbox[1], "row1": r.bbox[2], "col1": r.bbox[3]})
    cols = ["region", "code", "name", "broad", "n_pixels", "n_columns", "mean_confidence", "row", "col", "x", "y",
            "row0", "col0", "row1", "col1"]
    out = {}
    with atomic_path(outdir / "regions.csv", overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=cols)
            wr.writeheader()
            wr.writerows(rows)
    out["regions_csv"] = outdir / "regions.csv"
    with atomic_path(outdir / "region_spectra.csv", overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["wavelength_nm"] + [f"region{r.id}_{k}" for r in result.regions
                                              for k in ("ratioed", "unratioed")])
            for b, wl in enumerate(result.wavelengths):
                wr.writerow([f"{wl:.3f}"] + [f"{v:.6g}" for r in result.regions
                                             for v in (r.mean_ratioed[b], r.mean_unratioed[b])])
    out["region_spectra"] = outdir / "region_spectra.csv"
    feats = []
    if result.regions:
        from rasterio import features

        geoms: dict[int, list] = {}
        for geom, val in features.shapes(result.region_map.astype(np.int32), mask=result.region_map > 0,
                                         transform=transform if transform is not None else features.Affine.identity(),
                                         connectivity=8):
            geoms.setdefault(int(val), []).append(geom["coordinates"])
        for r, props in zip(result.regions, rows, strict=True):
            polys = geoms.get(r.id, [])
            feats.append({"type": "Feature", "id": r.id,
                          "geometry": {"type": "MultiPolygon", "coordinates": polys},
                          "properties": {**props, "wavelength_nm": [round(float(w), 3) for w in result.wavelengths],
                                         "mean_ratioed": [float(v) for v in r.mean_ratioed],
                                         "mean_unratioed": [float(v) for v in r.mean_unratioed]}})
    fc = {"type": "FeatureCollection", "features": feats}
    if crs is not None:  # Mars coordinates: record the CRS (not WGS 84) so GIS tools do not assume Earth
        fc["crs"] = {"type": "name", "properties": {"name": crs.to_wkt()}}
    with atomic_path(outdir / "regions.geojson", overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(fc), encoding="utf-8")
    out["regions_geojson"] = outdir / "regions.geojson"
    return out


def false_colour_bands(wl: np.ndarray) -> list[int]:
    """Band indices nearest 2529, 1506 and 1080 nm (a standard CRISM IR false-colour)."""
    return [int(np.argmin(np.abs(wl - t))) for t in (2529.0, 1506.0, 1080.0)]


def reference_spectra(codes, wl: np.ndarray) -> dict[int, np.ndarray]:
    """A ratioed reference spectrum per class from the simulated mineral families (when known)."""
    from orbitml.crism.simdata import CODE_FAMILY
    from orbitml.simulate.spectra import absorption_spectrum, family_params

    out = {}
    for c in codes:
        fam = CODE_FAMILY.get(int(c))
        if fam:
            out[int(c)] = absorption_spectrum(wl, family_params(fam), with_continuum=False)
    return out


def image_report(result: CrismResult, path: Path, title: str, model_card: dict | None = None,
                 truth: np.ndarray | None = None):
    """One self-contained HTML page: false colour, class overlay, region spectra beside references."""
    import matplotlib.pyplot as plt

    from orbitml.report import Report, spectra_figure
    from orbitml.report.figures import rgb_composite

    rep = Report(f"CRISM classification: {title}")
    wl = result.wavelengths
    cube = np.moveaxis(np.nan_to_num(result.unratioed, nan=0.0), -1, 0)
    rgb = rgb_composite(cube, false_colour_bands(wl))
    codes = sorted({int(c) for c in np.unique(result.class_map) if c > 0})
    h, w = result.class_map.shape
    fig, axes = plt.subplots(1, 2, figsize=(10, min(12.0, 5 * h / max(w, 1) + 0.6)))
    axes[0].imshow(rgb, interpolation="nearest")
    axes[0].set_title("false colour (R 2.53, G 1.51, B 1.08 um)")
    axes[1].imshow(rgb * 0.5, interpolation="nearest")
    from matplotlib.patches import Patch

    colours = [tuple(v / 255 for v in c) for c in cc.class_table().colours]
    handles = []
    for c in (c for c in codes if c != cc.NEUTRAL):
        m = np.ma.masked_where(result.class_map != c, np.ones(result.class_map.shape))
        axes[1].imshow(m, cmap=plt.matplotlib.colors.ListedColormap([colours[c]]), alpha=0.8,
                       interpolation="nearest", vmin=0, vmax=1)
        handles.append(Patch(color=colours[c], label=cc.name(c)))
    axes[1].set_title("classes (neutral and unclassified not shown)")
    if handles:
        axes[1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
    for a in axes:
        a.set_axis_off()
    fig.tight_layout()
    table = [{"region": r.id, "class": r.name, "broad": r.broad, "pixels": r.n_pixels, "columns": r.n_columns,
              "confidence": round(r.mean_confidence, 3), "row": round(r.row, 1), "col": round(r.col, 1)}
             for r in result.regions]
    valid = result.class_map >= 0
    text = ""
    notice = model_notice(model_card)
    if notice:
        text += f"WARNING - {notice}. Class names on this page are what a demonstration model says.\n\n"
    text += (f"{valid.sum()} valid pixels of {valid.size}; {len(result.regions)} regions; "
             f"{result.unknown_fraction:.1%} of valid pixels rejected as unknown (outside the training data). "
             f"Ratioing: {result.ratio_method}. " + " ".join(result.notes))
    if truth is not None:
        ok = truth > 0
        from orbitml.report.html import format_number

        acc = float((result.class_map[ok] == truth[ok]).mean())
        text += f"\n\nPixel accuracy against the known truth: {format_number(acc)}."
    if model_card:
        cal = model_card.get("calibration") or {}
        if cal:
            text += (f"\n\nModel calibration on held-out images: temperature {cal.get('temperature', 1):.2f}, "
                     f"ECE {cal.get('ece_before', float('nan')):.3f} -> {cal.get('ece_after', float('nan')):.3f}.")
    if notice:
        rep.add_section("Demo model: not for science", f"{notice}. Train on crism_ml's labelled data "
                        "(Zenodo record 13338091) for results on real images.")
    rep.add_section("Overview", text, figures=[("false colour and class overlay", fig)],
                    tables=[("regions", table)] if table else [])
    refs = reference_spectra([r.code for r in result.regions], wl)
    nm = int((wl <= 2650).sum())
    figs = []
    for r in result.regions[:24]:
        spectra = [r.mean_ratioed[:nm]]
        labels = [f"region {r.id} ratioed"]
        if r.code in refs:
            ref = refs[r.code][:nm]
            spectra.append(ref / np.nanmean(ref) * np.nanmean(r.mean_ratioed[:nm]))
            labels.append(f"reference: {r.name} (simulated family)")
        figs.append((f"region {r.id}: {r.name}, {r.n_pixels} px",
                     spectra_figure(wl[:nm], np.array(spectra), labels, title=f"region {r.id}: {r.name}",
                                    ylabel="ratioed I/F")))
    if figs:
        rep.add_section("Region spectra", "Mean ratioed spectrum of each region beside a reference spectrum "
                        "of its class.", figures=figs)
    return rep.write(path)


def region_table_text(result: CrismResult) -> str:
    buf = io.StringIO()
    for r in result.regions:
        buf.write(f"{r.id:3d} {r.name:28s} {r.n_pixels:6d} px  conf {r.mean_confidence:.2f}\n")
    return buf.getvalue()
