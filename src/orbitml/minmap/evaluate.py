"""Accuracy of a minmap model against known truth, beside the FCLS class-mean baseline.

The baseline is what a user would otherwise do: fully constrained least squares
(:func:`orbitml.unmix.fcls`) with each class's mean library spectrum as its endmember (stored in
the model), class = largest abundance.  Metrics: overall accuracy, Cohen's kappa, per-class F1
(Unclassified predictions count as errors), the fraction left Unclassified, and the abundance RMSE
over valid pixels and classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.minmap.mapping import CLASS_NODATA, check_bands

__all__ = ["fcls_baseline", "class_metrics", "abundance_rmse", "read_truth", "compare", "report_html"]


def fcls_baseline(model, card: dict, scene, valid: np.ndarray, path: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``(classes (H, W) uint8 1..K / 255, abundances (K, H, W) float32)`` by FCLS with class means."""
    from orbitml.unmix import fcls

    idx = check_bands(scene, card, path)
    E = model.class_means.cpu().numpy().astype(np.float64)
    K, (H, W) = E.shape[0], valid.shape
    data = np.asarray(scene.data[idx], dtype=np.float64).reshape(idx.size, -1).T
    flat = np.flatnonzero(valid.ravel())
    A = np.full((K, H * W), np.nan, np.float32)
    cls = np.full(H * W, CLASS_NODATA, np.uint8)
    if flat.size:
        a = fcls(data[flat], E)
        A[:, flat] = a.T
        cls[flat] = a.argmax(axis=1) + 1
    return cls.reshape(H, W), A.reshape(K, H, W)


def class_metrics(pred: np.ndarray, truth: np.ndarray, names: list[str]) -> dict[str, Any]:
    """OA, kappa and per-class F1 over pixels whose truth is a class (1..K) and prediction not nodata."""
    from sklearn.metrics import cohen_kappa_score, f1_score

    K = len(names)
    use = (truth >= 1) & (truth <= K) & (pred != CLASS_NODATA)
    t, p = truth[use].astype(int), pred[use].astype(int)
    if t.size == 0:
        raise OrbitmlInputError("no pixel has both a truth class (1..K) and a prediction")
    f1 = f1_score(t, p, labels=list(range(1, K + 1)), average=None, zero_division=0)
    return {"overall_accuracy": float(np.mean(t == p)), "kappa": float(cohen_kappa_score(t, p)),
            "f1": {n: float(v) for n, v in zip(names, f1, strict=True)}, "mean_f1": float(np.mean(f1)),
            "unclassified_fraction": float(np.mean(p == 0)), "n_pixels": int(t.size)}


def abundance_rmse(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    """RMSE over valid pixels and all classes of two ``(K, H, W)`` abundance cubes."""
    ok = valid & np.isfinite(pred).all(0) & np.isfinite(truth).all(0)
    if not ok.any():
        raise OrbitmlInputError("no valid pixel to compare abundances on")
    d = pred[:, ok].astype(np.float64) - truth[:, ok].astype(np.float64)
    return float(np.sqrt(np.mean(d * d)))


def _class_names(path, t) -> list[str] | None:
    """Class names by value from a GeoTIFF's CLASS_NAMES tag or an ENVI header's ``class names``."""
    if t.attrs.get("class_names"):
        return [str(n).strip() for n in t.attrs["class_names"]]
    try:
        from orbitml.io.classmap import read_class_table

        table = read_class_table(path)
        return list(table.names) if table is not None else None
    except Exception:  # not a raster with a class table: no names
        return None


def _remap_by_names(v: np.ndarray, file_names: list[str] | None, names: list[str], path) -> np.ndarray:
    """Truth values re-numbered to the model's 1..K when the file names its classes (0 = ignore)."""
    if not file_names:
        return v
    lut = np.zeros(max(len(file_names), int(v.max()) + 1), dtype=np.int64)
    known = {n.lower(): i + 1 for i, n in enumerate(names)}
    hits = 0
    for value, n in enumerate(file_names):
        lut[value] = known.get(n.lower(), 0)
        hits += n.lower() in known
    if hits == 0:
        raise OrbitmlInputError(f"truth names classes {file_names} but none is a model class {names}", path)
    return lut[np.clip(v, 0, lut.size - 1)]


def read_truth(paths: list[str], scene, names: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(class raster (H, W) or None, abundance cube (K, H, W) or None)`` from truth files.

    A one-band file is a class raster (values 1..K in the model's class order, or matched by the
    class names in the file; 0 and nodata are ignored); a K-band file is an abundance cube (bands
    matched to the classes by name when its band names hold them, else in the model's order).
    """
    from orbitml.io import open_scene

    cls = ab = None
    H, W = scene.sizes["y"], scene.sizes["x"]
    for p in paths:
        t = open_scene(p)
        if (t.sizes["y"], t.sizes["x"]) != (H, W):
            raise OrbitmlInputError(f"truth is {t.sizes['y']} x {t.sizes['x']} but the scene is {H} x {W}", p)
        if t.sizes["band"] == 1:
            v = np.asarray(t.values[0])
            nd = t.rio.nodata
            v = np.where(np.isfinite(v), v, 0)
            if nd is not None and np.isfinite(nd):
                v = np.where(v == nd, 0, v)
            cls = _remap_by_names(v.astype(np.int64), _class_names(p, t), names, p)
        elif t.sizes["band"] == len(names):
            arr = np.asarray(t.values, dtype=np.float32)
            if "band_name" in t.coords:
                bn = [str(b).lower() for b in t.coords["band_name"].values]
                order = []
                for n in names:
                    hit = [i for i, b in enumerate(bn) if b == n.lower() or b.endswith(" " + n.lower())]
                    order.append(hit[0] if len(hit) == 1 else None)
                if all(o is not None for o in order) and len(set(order)) == len(order):
                    arr = arr[order]
            ab = arr
        else:
            raise OrbitmlInputError(f"truth has {t.sizes['band']} bands: expected 1 (class raster) or "
                                    f"{len(names)} (abundance cube, one band per class)", p)
    return cls, ab


def compare(net_cls, net_ab, fcls_cls, fcls_ab, truth_cls, truth_ab, valid, names) -> dict[str, Any]:
    """Metrics of the network and of the FCLS baseline against the truth."""
    res: dict[str, Any] = {"network": {}, "fcls_class_mean": {}}
    if truth_cls is not None:
        res["network"].update(class_metrics(net_cls, truth_cls, names))
        res["fcls_class_mean"].update(class_metrics(fcls_cls, truth_cls, names))
    if truth_ab is not None:
        res["network"]["abundance_rmse"] = abundance_rmse(net_ab, truth_ab, valid)
        res["fcls_class_mean"]["abundance_rmse"] = abundance_rmse(fcls_ab, truth_ab, valid)
    return res


def summary_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for method, m in res.items():
        if not isinstance(m, dict) or method not in ("network", "fcls_class_mean"):
            continue
        rows.append({"method": method, "overall accuracy": m.get("overall_accuracy", ""), "kappa": m.get("kappa", ""),
                     "mean F1": m.get("mean_f1", ""), "unclassified": m.get("unclassified_fraction", ""),
                     "abundance RMSE": m.get("abundance_rmse", "")})
    return rows


def report_html(path, res, net_cls, fcls_cls, truth_cls, names, notice: str | None, title: str) -> None:
    from orbitml.minmap.outputs import class_figure
    from orbitml.report.html import Report

    rep = Report(title)
    text = "Network (3-D CNN, fully convolutional) against FCLS with each class's mean library spectrum."
    if notice:
        text += f"\n\n{notice}."
    figs = [("network", class_figure(net_cls, names, "network", notice)),
            ("FCLS class-mean baseline", class_figure(fcls_cls, names, "FCLS class-mean"))]
    if truth_cls is not None:
        figs.insert(0, ("truth", class_figure(np.where(truth_cls > len(names), CLASS_NODATA, truth_cls)
                                              .astype(np.uint8), names, "truth")))
    f1_rows = []
    for n in names:
        row = {"class": n}
        for method in ("network", "fcls_class_mean"):
            if "f1" in res.get(method, {}):
                row[f"F1 {method}"] = res[method]["f1"][n]
        f1_rows.append(row)
    rep.add_section("minmap evaluation", text, figures=figs,
                    tables=[("summary", summary_rows(res)), ("per-class F1", f1_rows)])
    rep.write(path)
