"""Categorise mask components: cosmic rays (spot, track, worm) or not (star, hot column, bleed).

Two classifiers share one interface (``fit``/``predict``/``predict_proba`` on a :func:`hit_table`):

* ``HitClassifier(method="rules")``: a transparent rule baseline on shape features.
* ``HitClassifier(method="forest")`` (default): a seeded scikit-learn random forest trained on
  simulated labelled hits (:func:`simulate_labelled_hits`).  After fitting, the trees are exported
  to plain arrays and prediction runs on those arrays, so a saved model (``save``: safetensors
  arrays + a JSON card; ``load``) never needs pickle and predicts exactly like the fitted forest.

:func:`default_classifier` trains the forest from fixed settings and a seed (same settings, same
model, bit for bit) and caches it under ``$ORBITML_CACHE`` (default ``~/.cache/orbitml``), keyed by
a hash of the settings and the scikit-learn version.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.base import BaseEstimator, ClassifierMixin

from orbitml.cosmic.features import hit_table, label_hits, replace_masked_median
from orbitml.errors import OrbitmlInputError
from orbitml.io.atomic import atomic_path
from orbitml.simulate.ccd import inject_cosmic_rays, simulate_frame

CLASSES = ("spot", "track", "worm", "star", "hot_column", "bleed")
COSMIC_CLASSES = ("spot", "track", "worm")
MODEL_FEATURES = ["n_pixels", "log_energy", "log_peak", "peak_frac", "size_px", "elongation", "length_px",
                  "width_px", "vertical", "curvature", "sharpness", "column_frac", "flat_top_frac",
                  "excess_cv", "log_e_per_pixel", "bbox_h", "bbox_w", "fill"]
MODEL_VERSION = 2


def model_matrix(table: pd.DataFrame) -> np.ndarray:
    """The classifier's feature matrix (float32, as scikit-learn trees use) from a hit table."""
    t = table
    cols = {
        "n_pixels": t["n_pixels"], "log_energy": np.log10(np.maximum(t["energy_e"], 1.0)),
        "log_peak": np.log10(np.maximum(t["peak_e"], 1.0)), "peak_frac": t["peak_frac"],
        "size_px": t["size_px"], "elongation": t["elongation"], "length_px": t["length_px"],
        "width_px": t["width_px"], "vertical": np.abs(np.sin(np.radians(t["orientation_deg"]))),
        "curvature": t["curvature"], "sharpness": np.log10(np.maximum(t["sharpness"], 1e-3)),
        "column_frac": t["column_frac"], "flat_top_frac": t["flat_top_frac"], "excess_cv": t["excess_cv"],
        "log_e_per_pixel": np.log10(np.maximum(t["energy_e"] / np.maximum(t["n_pixels"], 1), 1.0)),
        "bbox_h": t["bbox_h"],
        "bbox_w": t["bbox_w"], "fill": t["fill"],
    }
    x = np.column_stack([np.asarray(cols[k], dtype=np.float64) for k in MODEL_FEATURES])
    return np.nan_to_num(x, nan=0.0, posinf=1e6, neginf=-1e6).astype(np.float32)


# --------------------------------------------------------------------------- training data


def _component_classes(lab: np.ndarray, n: int, hit_id: np.ndarray, kinds: dict, truth: dict) -> list[str]:
    """Majority truth class of each component, by pixel count."""
    out = []
    for sl_i, sl in enumerate(ndimage.find_objects(lab), start=1):
        comp = lab[sl] == sl_i
        votes = {
            "bleed": int((truth["bleed"][sl] & comp).sum()),
            "hot_column": int((truth["hot_column"][sl] & comp).sum()),
            "star": int((truth["star_core"][sl] & comp).sum()),
        }
        ids = hit_id[sl][comp]
        ids = ids[ids > 0]
        if ids.size:
            kind_ids = np.bincount(ids)
            votes[kinds[int(np.argmax(kind_ids))]] = int(ids.size)
        if votes["bleed"] >= 3:  # a saturated star with its bleed counts as a bleed
            out.append("bleed")
        else:
            out.append(max(votes, key=votes.get) if max(votes.values()) > 0 else "spot")
    return out


def simulate_labelled_hits(n_frames: int = 24, shape: tuple[int, int] = (256, 256),
                           seed: int = 0) -> pd.DataFrame:
    """Hit tables of simulated frames, with a ``truth`` class per component and a ``frame`` index.

    Each frame: stars (partly saturating, with bleeds), 0-4 hot columns, cosmic rays at a random
    rate through a sensitive layer 10-300 um thick (log-uniform: thin back-illuminated to deep-depletion
    CCDs) with 9-24 um pixels; star cores are masked down to a random fraction of their footprint, as a detector's false
    positives would be.  CLEAN is emulated by a local median over the masked components.
    """
    rng = np.random.default_rng(seed)
    tables = []
    for k in range(n_frames):
        fseed = int(rng.integers(2**31))
        frame, truth = simulate_frame(
            shape, sky_e=float(rng.uniform(20, 400)), dark_e=5.0, read_noise_e=float(rng.uniform(3, 10)),
            n_stars=int(rng.integers(4, 20)), star_flux_e=(2e3, 1e7), fwhm_px=float(rng.uniform(1.8, 4.0)),
            hot_columns=int(rng.integers(0, 5)), seed=fseed)
        inj = inject_cosmic_rays(frame, rate_per_cm2_s=float(rng.uniform(3, 12)), exposure_s=150.0,
                                 thickness_um=float(np.exp(rng.uniform(np.log(10), np.log(300)))),
                                 pixel_size_um=float(rng.uniform(9, 24)), worm_fraction=0.15,
                                 seed=fseed + 1)
        level = truth["noise_e"] * float(np.exp(rng.uniform(np.log(3.0), np.log(40.0))))
        truth["star_core"] = (truth["star_e"] > level) & ~truth["bleed"]
        mask = inj.mask | truth["star_core"] | truth["hot_column"] | truth["bleed"]
        clean = replace_masked_median(inj.image, mask)
        lab, n = label_hits(mask)
        table = hit_table(inj.image, clean, mask, labels=lab)
        kinds = dict(zip(inj.hits["id"].astype(int), inj.hits["kind"], strict=True))
        table["truth"] = _component_classes(lab, n, inj.hit_id, kinds, truth)
        table["frame"] = k
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


# --------------------------------------------------------------------------- classifiers


def rule_classes(table: pd.DataFrame) -> np.ndarray:
    """The rule baseline: one class name per row of a hit table."""
    t = table
    vert = np.abs(t["orientation_deg"] - 90.0) < 12.0
    col_like = vert & (t["column_frac"] >= 0.4) & (t["bbox_h"] >= 10) & (t["elongation"] > 4.0)
    bleed = t["flat_top_frac"] * (t["n_pixels"] - 1) >= 3  # a plateau at the full well
    col_like &= ~bleed
    hot = col_like
    star = ~col_like & ~bleed & (t["sharpness"] < 2.5) & (t["n_pixels"] >= 5)
    worm = ~col_like & ~bleed & ~star & (t["curvature"] >= 1.12) & (t["length_px"] >= 4)
    track = ~col_like & ~bleed & ~star & ~worm & (t["length_px"] >= 3.5)
    out = np.full(len(t), "spot", dtype=object)
    for name, sel in (("track", track), ("worm", worm), ("star", star), ("hot_column", hot),
                      ("bleed", bleed)):
        out[np.asarray(sel, bool)] = name
    return out


def _export_forest(forest, n_classes: int, class_codes: np.ndarray) -> dict[str, np.ndarray]:
    """Flatten a fitted forest into arrays: children, features, thresholds, leaf class fractions."""
    left, right, feat, thr, val, offsets = [], [], [], [], [], [0]
    for est in forest.estimators_:
        tr = est.tree_
        v = np.zeros((tr.node_count, n_classes))
        raw = tr.value[:, 0, :]
        v[:, class_codes] = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1e-300)
        base = offsets[-1]
        lf, rt = tr.children_left.copy(), tr.children_right.copy()
        lf[lf >= 0] += base
        rt[rt >= 0] += base
        left.append(lf)
        right.append(rt)
        feat.append(tr.feature)
        thr.append(tr.threshold)
        val.append(v)
        offsets.append(base + tr.node_count)
    return {"left": np.concatenate(left).astype(np.int64), "right": np.concatenate(right).astype(np.int64),
            "feature": np.concatenate(feat).astype(np.int64), "threshold": np.concatenate(thr),
            "value": np.concatenate(val), "roots": np.asarray(offsets[:-1], np.int64)}


def _forest_proba(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    left, right, feat, thr, val = (arrays[k] for k in ("left", "right", "feature", "threshold", "value"))
    x = np.asarray(x, np.float32)
    out = np.zeros((x.shape[0], val.shape[1]))
    rows = np.arange(x.shape[0])
    for root in arrays["roots"]:
        node = np.full(x.shape[0], root, np.int64)
        while True:
            inner = left[node] >= 0
            if not inner.any():
                break
            ni = node[inner]
            go_left = x[rows[inner], feat[ni]] <= thr[ni]
            node[inner] = np.where(go_left, left[ni], right[ni])
        out += val[node]
    return out / len(arrays["roots"])


class HitClassifier(ClassifierMixin, BaseEstimator):
    """Classes of hit-table rows; ``classes_`` = :data:`CLASSES` in that order (a scikit-learn
    estimator: ``get_params``/``clone`` work; ``fit`` takes a hit table and its class names)."""

    def __init__(self, method: str = "forest", n_estimators: int = 100, max_depth: int | None = 14,
                 min_samples_leaf: int = 2, random_state: int = 0):
        if method not in ("forest", "rules"):
            raise OrbitmlInputError(f"unknown classifier method {method!r}; use 'forest' or 'rules'")
        self.method = method
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    @property
    def classes_(self) -> np.ndarray:
        return np.array(CLASSES)

    @property
    def card_(self) -> dict:
        """The JSON model card (empty for the rules)."""
        return getattr(self, "_card", {"method": "rules"} if self.method == "rules" else {})

    @card_.setter
    def card_(self, value: dict) -> None:
        self._card = value

    def fit(self, table: pd.DataFrame, y) -> HitClassifier:
        if self.method == "rules":
            return self
        from sklearn.ensemble import RandomForestClassifier

        codes = np.array([CLASSES.index(str(c)) for c in y])
        rf = RandomForestClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                    min_samples_leaf=self.min_samples_leaf, class_weight="balanced",
                                    random_state=self.random_state, n_jobs=1)
        rf.fit(model_matrix(table), codes)
        self.forest_ = rf
        self.trees_ = _export_forest(rf, len(CLASSES), rf.classes_.astype(int))
        self.card_ = {"model": "orbitml.cosmic.HitClassifier", "version": MODEL_VERSION, "method": "forest",
                      "classes": list(CLASSES), "features": MODEL_FEATURES,
                      "params": {"n_estimators": self.n_estimators, "max_depth": self.max_depth,
                                 "min_samples_leaf": self.min_samples_leaf,
                                 "random_state": self.random_state},
                      "n_train": len(codes),
                      "train_counts": {c: int((codes == i).sum()) for i, c in enumerate(CLASSES)}}
        return self

    def predict_proba(self, table: pd.DataFrame) -> np.ndarray:
        if len(table) == 0:
            return np.zeros((0, len(CLASSES)))
        if self.method == "rules":
            names = rule_classes(table)
            return (np.asarray(names)[:, None] == np.array(CLASSES)[None, :]).astype(np.float64)
        if not hasattr(self, "trees_"):
            raise RuntimeError("HitClassifier is not fitted; call fit() or load()")
        return _forest_proba(self.trees_, model_matrix(table))

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        if self.method == "rules":
            return rule_classes(table).astype(str)
        return self.classes_[np.argmax(self.predict_proba(table), axis=1)]

    # ---- persistence: safetensors arrays + JSON card, no pickle
    def save(self, path: str | os.PathLike, overwrite: bool = True) -> Path:
        from safetensors.numpy import save_file

        if not hasattr(self, "trees_"):
            raise RuntimeError("only a fitted forest can be saved")
        path = Path(path)
        with atomic_path(path, overwrite=overwrite) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in self.trees_.items()}, str(tmp))
        card = path.with_suffix(".json")
        with atomic_path(card, overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.card_, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> HitClassifier:
        from safetensors.numpy import load_file

        path = Path(path)
        card_path = path.with_suffix(".json")
        if not path.is_file():
            raise OrbitmlInputError("classifier weights not found", path)
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
            arrays = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error type for damaged files
            raise OrbitmlInputError(f"cannot read classifier ({exc})", path) from exc
        need = {"left", "right", "feature", "threshold", "value", "roots"}
        if (card.get("classes") != list(CLASSES) or card.get("features") != MODEL_FEATURES
                or not need <= set(arrays)):
            raise OrbitmlInputError("classifier file does not match this orbitml version "
                                    "(classes, features or arrays differ)", path)
        p = card.get("params", {})
        clf = cls("forest", **{k: p[k] for k in ("n_estimators", "max_depth", "min_samples_leaf",
                                                   "random_state") if k in p})
        clf.trees_ = arrays
        clf.card_ = card
        return clf


DEFAULT_TRAINING = {"n_frames": 24, "shape": [256, 256], "seed": 0}


def default_classifier(cache_dir: str | os.PathLike | None = None, training: dict | None = None,
                       random_state: int = 0) -> HitClassifier:
    """The forest trained on simulated hits with fixed settings; cached after the first call."""
    import sklearn

    settings = {**DEFAULT_TRAINING, **(training or {}), "random_state": random_state,
                "model_version": MODEL_VERSION, "sklearn": sklearn.__version__}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(cache_dir or os.environ.get("ORBITML_CACHE") or Path.home() / ".cache" / "orbitml")
    path = cache / f"cosmic_hit_classifier_{key}.safetensors"
    if path.is_file():
        try:
            return HitClassifier.load(path)
        except OrbitmlInputError:
            pass  # a damaged cache entry: retrain below
    data = simulate_labelled_hits(settings["n_frames"], tuple(settings["shape"]), settings["seed"])
    clf = HitClassifier("forest", random_state=random_state).fit(data, data["truth"])
    clf.card_["training"] = settings
    clf.card_["sha256_settings"] = key
    try:
        clf.save(path)
    except OSError:
        pass  # read-only home: keep the in-memory model
    return clf
