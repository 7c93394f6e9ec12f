"""Image-wise evaluation: accuracy and macro-F1 at fine and broad level, confusion matrices, ECE.

Every split is by image (never by random pixels): pixels of one image are strongly correlated,
so a pixel-wise split measures memory, not generalisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import GroupKFold

from orbitml.crism import classes as cc
from orbitml.crism.ensemble import CrismClassifier, expected_calibration_error
from orbitml.crism.matfile import MatDataset
from orbitml.crism.preprocess import despike
from orbitml.crism.settings import CrismSettings
from orbitml.errors import OrbitmlInputError


def select_images(ds: MatDataset, images: Sequence[str] | None) -> np.ndarray:
    """Boolean mask of the spectra of the named images (all when None)."""
    if not images:
        return np.ones(ds.pixims.size, bool)
    names = np.asarray(ds.im_names, dtype=object)
    unknown = [i for i in images if i not in set(names)]
    if unknown:
        raise OrbitmlInputError(f"image(s) not in the file: {', '.join(unknown[:5])}", ds.source)
    ids = np.flatnonzero(np.isin(names, list(images))) + 1
    return np.isin(ds.pixims, ids)


def metrics(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, proba_raw: np.ndarray | None = None) -> dict:
    """Scores of argmax predictions (no threshold) against training-level codes."""
    y_true = cc.to_train_codes(np.asarray(y_true))
    k = proba.argmax(axis=1)
    y_pred = classes[k]
    labels = np.union1d(np.unique(y_true), classes)
    bt, bp = cc.broad_codes(y_true), cc.broad_codes(y_pred)
    blabels = np.unique(np.concatenate([bt, bp]))
    conf = proba[np.arange(k.size), k]
    out = {
        "n_spectra": int(y_true.size),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0)),
        "broad_accuracy": float(accuracy_score(bt, bp)),
        "broad_macro_f1": float(f1_score(bt, bp, labels=np.unique(bt), average="macro", zero_division=0)),
        "ece": expected_calibration_error(conf, y_pred == y_true),
        "labels": [int(v) for v in labels],
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "broad_labels": [cc.broad_names()[int(b) - 1] for b in blabels],
        "broad_confusion": confusion_matrix(bt, bp, labels=blabels).tolist(),
    }
    if proba_raw is not None:
        kr = proba_raw.argmax(axis=1)
        out["ece_uncalibrated"] = expected_calibration_error(proba_raw[np.arange(kr.size), kr], classes[kr] == y_true)
    return out


def evaluate_model(clf: CrismClassifier, ds: MatDataset, images: Sequence[str] | None = None) -> dict:
    """Metrics of a trained model on the spectra of ``images`` of a labelled file."""
    from orbitml.crism.pipeline import work_bands
    from orbitml.crism.train import dataset_wavelengths

    if ds.pixlabs is None:
        raise OrbitmlInputError("the file has no pixlabs variable (not a labelled set)", ds.source)
    sel = select_images(ds, images)
    idx, _ = work_bands(dataset_wavelengths(ds), clf.wavelengths_, ds.source)
    X = ds.pixspec[sel][:, idx[: clf.wavelengths_.size]]
    X, _ = despike(X, clf.settings.despike_passes, protect=clf.settings.despike_protect)
    raw = clf.predict_proba(X, calibrated=False)
    cal, score = clf.predict_scores(X)
    res = metrics(ds.pixlabs[sel], cal, clf.classes_, raw)
    res["images"] = sorted({str(n) for n in ds.image_names[sel]})
    if clf.ood_threshold_ is not None:  # genuine spectra of these images that the model would call unknown
        res["ood_rejected"] = float(np.mean(~(score >= clf.ood_threshold_[cal.argmax(axis=1)])))
    return res


def cross_validate(ds: MatDataset, settings: CrismSettings, n_splits: int = 3,
                   progress: Callable[[str], None] | None = None) -> dict:
    """Image-wise K-fold cross-validation (GroupKFold on image ids); pooled and per-fold metrics."""
    from orbitml.crism.train import dataset_wavelengths

    say = progress or (lambda m: None)
    if ds.pixlabs is None:
        raise OrbitmlInputError("the file has no pixlabs variable (not a labelled set)", ds.source)
    n_img = np.unique(ds.pixims).size
    if n_img < n_splits:
        raise OrbitmlInputError(f"{n_splits}-fold image-wise CV needs >= {n_splits} images, found {n_img}", ds.source)
    wl = dataset_wavelengths(ds)
    X, _ = despike(ds.pixspec, settings.despike_passes, protect=settings.despike_protect)
    y = ds.pixlabs
    folds, yt_all, P_all = [], [], []
    for f, (tr, te) in enumerate(GroupKFold(n_splits=n_splits).split(X, y, ds.pixims)):
        say(f"fold {f + 1}/{n_splits}: training on {np.unique(ds.pixims[tr]).size} images")
        clf = CrismClassifier(settings).fit(X[tr], y[tr], ds.pixims[tr], wl, despiked=True)
        Xte = X[te][:, : clf.wavelengths_.size]
        P = clf.predict_proba(Xte)
        m = metrics(y[te], P, clf.classes_, clf.predict_proba(Xte, calibrated=False))
        m["test_images"] = sorted({str(n) for n in ds.image_names[te]})
        folds.append(m)
        yt_all.append(cc.to_train_codes(y[te]))
        P_all.append(clf.classes_[P.argmax(1)])
    yt, yp = np.concatenate(yt_all), np.concatenate(P_all)
    return {"n_splits": n_splits, "folds": folds,
            "accuracy": float(accuracy_score(yt, yp)),
            "macro_f1": float(f1_score(yt, yp, labels=np.unique(yt), average="macro", zero_division=0)),
            "broad_accuracy": float(accuracy_score(cc.broad_codes(yt), cc.broad_codes(yp))),
            "broad_macro_f1": float(f1_score(cc.broad_codes(yt), cc.broad_codes(yp), average="macro",
                                             labels=np.unique(cc.broad_codes(yt)), zero_division=0))}
