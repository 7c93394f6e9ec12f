"""Small simulated CRISM sets and a trained model, built once per test process."""

from __future__ import annotations

from functools import cache

import numpy as np

from orbitml.crism import simdata as sd
from orbitml.crism.ensemble import CrismClassifier
from orbitml.crism.ratio import BlandModel
from orbitml.crism.settings import CrismSettings

CODES = (6, 14, 15, 19, 30, 33, 39)


@cache
def labelled(seed: int = 0, n_images: int = 10):
    return sd.simulate_labelled(n_images=n_images, pixels_per_class=40, codes=CODES, classes_per_image=4, seed=seed)


@cache
def bland(seed: int = 1):
    return sd.simulate_bland(n_images=5, pixels_per_image=120, seed=seed)


@cache
def model():
    d = labelled()
    clf = CrismClassifier(CrismSettings(seed=0)).fit(d["pixspec"], d["pixlabs"], d["pixims"], d["wavelengths"])
    b = bland()
    bm = BlandModel().fit(b["pixspec"], b["pixims"], b["wavelengths"])
    return clf, bm


@cache
def image(seed: int = 2):
    return sd.simulate_image(rows=100, cols=32, codes=(6, 14, 19, 30), seed=seed)


def copy_image(seed: int = 2):
    im = image(seed)
    return {k: np.array(v, copy=True) for k, v in im.items()}
