"""Training from crism_ml's MATLAB files (or the simulated set), with a content-hash cache key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from orbitml.crism import bands as cb
from orbitml.crism.ensemble import FORMAT_VERSION, CrismClassifier, data_hash
from orbitml.crism.matfile import MatDataset
from orbitml.crism.ratio import BlandModel
from orbitml.crism.settings import CrismSettings
from orbitml.errors import OrbitmlInputError


def dataset_wavelengths(ds: MatDataset) -> np.ndarray:
    """Wavelengths of a training file's columns: crism_ml's 350 (or 248) nominal L channels."""
    nb = ds.pixspec.shape[1]
    if nb in (cb.N_ALL, cb.N_MAIN):
        return cb.nominal_wavelengths(nb)
    raise OrbitmlInputError(f"pixspec has {nb} bands; crism_ml files have 350 (or 248)", ds.source)


def cache_key(labelled: MatDataset, bland: MatDataset | None, settings: CrismSettings) -> str:
    parts = [data_hash(labelled.pixspec, labelled.pixlabs, labelled.pixims)]
    parts.append(data_hash(bland.pixspec, bland.pixims) if bland is not None else "no-bland")
    import hashlib

    return hashlib.sha256("|".join([*parts, settings.digest(), f"v{FORMAT_VERSION}"]).encode()).hexdigest()


def simulated_datasets(seed: int = 0, n_images: int = 16, pixels_per_class: int = 80):
    """The simulated labelled and bland sets as :class:`MatDataset` objects."""
    from orbitml.crism import simdata

    lab = simdata.simulate_labelled(n_images=n_images, pixels_per_class=pixels_per_class, seed=seed)
    bl = simdata.simulate_bland(n_images=max(4, n_images // 2), seed=seed + 1)
    return (MatDataset(lab["pixspec"], lab["pixims"].astype(np.int64), list(lab["im_names"]),
                       lab["pixlabs"].astype(np.int64), lab["pixcrds"], lab["pixpat"], source="simulated"),
            MatDataset(bl["pixspec"], bl["pixims"].astype(np.int64), list(bl["im_names"]), None, bl["pixcrds"],
                       source="simulated"))


def train(labelled: MatDataset, bland: MatDataset | None, settings: CrismSettings, out: str | Path,
          force: bool = False, progress: Callable[[str], None] | None = None) -> tuple[Path, bool]:
    """Train (or reuse) a model in folder ``out``.  Returns ``(folder, trained)``.

    The model is reused when ``out/model.json`` carries the same cache key: the content hash of
    the training arrays plus every setting (a renamed file with new contents is retrained; a
    moved file with the same contents is not).
    """
    say = progress or (lambda m: None)
    if labelled.pixlabs is None:
        raise OrbitmlInputError("the labelled file has no pixlabs variable", labelled.source)
    key = cache_key(labelled, bland, settings)
    out = Path(out)
    card_p = out / "model.json"
    if card_p.is_file() and not force:
        try:
            if json.loads(card_p.read_text()).get("cache_key") == key and (out / "model.npz").is_file():
                say("model is up to date (same training data and settings); reusing it")
                return out, False
        except (json.JSONDecodeError, OSError):
            pass
    wl = dataset_wavelengths(labelled)
    names = np.asarray(labelled.im_names, dtype=object)
    clf = CrismClassifier(settings).fit(labelled.pixspec, labelled.pixlabs, labelled.pixims, wl, progress=say)
    bmodel = None
    if bland is not None:
        say("fitting the bland-pixel model")
        bmodel = BlandModel(settings.kappa0, settings.kappa1).fit(bland.pixspec, bland.pixims,
                                                                  dataset_wavelengths(bland))
    held = set(clf.heldout_images_)
    from orbitml.crism.outputs import training_data_card

    simulated = labelled.source == "simulated"
    extra = {"cache_key": key,
             "training_data": training_data_card(simulated, None if simulated else labelled.source,
                                                 None if simulated or bland is None else bland.source),
             "training": {
        "labelled": labelled.source, "bland": bland.source if bland is not None else None,
        "n_spectra": int(labelled.pixspec.shape[0]), "n_images": int(np.unique(labelled.pixims).size),
        "images": [str(n) for n in names], "heldout_image_names": [str(names[int(i) - 1]) for i in held
                                                                   if 0 < int(i) <= names.size],
        "n_bland_spectra": int(bland.pixspec.shape[0]) if bland is not None else 0}}
    clf.save(out, extra=extra, bland=bmodel)
    return out, True
