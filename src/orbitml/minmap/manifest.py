"""The ``orbitml minmap train`` manifest: one YAML file describes a whole run.

Example::

    scene: scene.img                  # the scene to map (bands, R and the basis come from it)
    mask: valid.tif                   # optional valid-pixel mask (non-zero = use), same grid and CRS
    labels: {raster: labels.tif, block: 64, val_fraction: 0.25}   # optional labelled scene pixels
    classes:                          # a library file per class (a folder, a .sli, a CSV ...)
      kaolinite: {library: libs/kaolinite.csv}
      alunite:   {library: usgs.sli, pattern: "^Alunite"}   # or one library + a name pattern
    # or: library_dir: libs/        (one library file per class, class = file stem)
    bands:
      remove_nm: [[1340, 1450], [1790, 1960]]
    augment: {n_per_class: 400, offset: 0.02, scale: [0.85, 1.15], tilt: 0.05, snr: 200}
    patches: {n_train: 2000, n_val: 400, snr_db: 35}
    projection: {dims: auto, basis: avca}
    network: {patch: 27, width: 120, c3: 32, head: 128}
    training: {epochs: 20, batch_size: 32, lr: 0.002}
    seed: 0
    device: auto
    out: model
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orbitml.errors import OrbitmlInputError
from orbitml.io.manifest import load_manifest, resolve_path

__all__ = ["ClassSpec", "MinmapManifest", "load"]

DEFAULT_REMOVE = [(1340.0, 1450.0), (1790.0, 1960.0)]  # the 1.4 and 1.9 um water-vapour windows


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassSpec(_Strict):
    library: str = Field(description="library file (ENVI .sli, USGS ASCII record, CSV)")
    pattern: str | None = Field(None, description="regular expression selecting this class's spectra")
    names: list[str] | None = Field(None, description="exact spectrum names selecting this class's spectra")
    wavelengths: str | None = Field(None, description="wavelength file for a record that needs one")


class Bands(_Strict):
    remove_nm: list[tuple[float, float]] = Field(default_factory=lambda: list(DEFAULT_REMOVE))
    keep_nm: tuple[float, float] | None = Field(None, description="use only bands inside this range")

    @field_validator("remove_nm")
    @classmethod
    def _ordered(cls, v):
        for lo, hi in v:
            if not lo < hi:
                raise ValueError(f"range ({lo}, {hi}) must have low < high")
        return v


class Augment(_Strict):
    n_per_class: int = Field(400, ge=1, description="augmented spectra drawn per class")
    offset: float = Field(0.02, ge=0)
    scale: tuple[float, float] = (0.85, 1.15)
    tilt: float = Field(0.05, ge=0, lt=1)
    snr: float = Field(200.0, gt=0, description="per-spectrum noise (SNR) of the augmented spectra")


class Patches(_Strict):
    n_train: int = Field(2000, ge=8)
    n_val: int = Field(400, ge=8)
    snr_db: float | None = Field(35.0, description="pixel noise added to the synthetic patches (dB); null = none")
    smoothness: tuple[float, float] = Field((1.5, 6.0), description="abundance-field smoothness range (pixels)")
    temperature: tuple[float, float] = Field((0.15, 0.6), description="abundance-field softmax temperature range")
    illumination: float = Field(0.3, ge=0, lt=2, description="relative range of the smooth illumination field")


class Labels(_Strict):
    raster: str = Field(description="label raster on the scene's grid: 0 = unlabelled, 1..K the classes in order "
                                    "(or matched by name through the raster's class table)")
    block: int = Field(64, ge=4, le=100_000, description="side (pixels) of the blocks held out for validation")
    val_fraction: float = Field(0.25, gt=0, lt=1, description="share of the labelled pixels held out (by blocks)")
    max_per_class: int = Field(2000, ge=1, le=1_000_000, description="labelled pixels per class used at most")


class Projection(_Strict):
    dims: int | Literal["auto"] = "auto"
    basis: Literal["avca", "pca"] = "avca"
    max_dims: int = Field(32, ge=2)
    far: float = Field(1e-3, gt=0, lt=1)


class Network(_Strict):
    patch: int = Field(27, ge=11)
    width: int = Field(120, ge=8)
    c3: int = Field(32, ge=2)
    head: int = Field(128, ge=4)

    @field_validator("patch")
    @classmethod
    def _odd(cls, v):
        if v % 2 == 0:
            raise ValueError("patch must be odd")
        return v


class Stopping(_Strict):
    min_accuracy: float = Field(0.993, gt=0, le=1)
    max_loss: float = Field(0.11, gt=0)
    enabled: bool = True


class Training(_Strict):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-3, gt=0)
    abundance_weight: float = Field(5.0, ge=0, description="weight of the abundance MSE in the loss")
    focal_gamma: float = Field(2.0, ge=0)
    stopping: Stopping = Field(default_factory=Stopping)
    threads: int | None = Field(None, ge=1)


class MinmapManifest(_Strict):
    scene: str
    mask: str | None = None
    labels: Labels | None = None
    classes: dict[str, ClassSpec] | None = None
    library_dir: str | None = None
    bands: Bands = Field(default_factory=Bands)
    augment: Augment = Field(default_factory=Augment)
    patches: Patches = Field(default_factory=Patches)
    projection: Projection = Field(default_factory=Projection)
    network: Network = Field(default_factory=Network)
    training: Training = Field(default_factory=Training)
    threshold: float = Field(0.5, ge=0, le=1, description="top probability below which a pixel is Unclassified")
    simulated: bool = Field(False, description="the libraries are simulated (stated in every product)")
    seed: int = 0
    device: str = "auto"
    out: str = "minmap_model"
    progress: bool = False


def load(path: str | os.PathLike) -> MinmapManifest:
    """Read and validate a manifest; paths become absolute against the manifest's folder."""
    path = Path(path)
    man = load_manifest(path, MinmapManifest)
    base = path.resolve().parent
    if (man.classes is None) == (man.library_dir is None):
        raise OrbitmlInputError("give exactly one of `classes` (per-class libraries) or `library_dir`", path)
    man.scene = resolve_path(man.scene, base)
    man.mask = resolve_path(man.mask, base)
    if man.labels is not None:
        man.labels.raster = resolve_path(man.labels.raster, base)
    man.out = resolve_path(man.out, base)
    man.library_dir = resolve_path(man.library_dir, base)
    if man.classes is not None:
        if len(man.classes) < 2:
            raise OrbitmlInputError(f"need at least two classes, the manifest names {len(man.classes)}", path)
        for spec in man.classes.values():
            spec.library = resolve_path(spec.library, base)
            spec.wavelengths = resolve_path(spec.wavelengths, base)
    lab = None if man.labels is None else man.labels.raster
    for what, p in (("scene", man.scene), ("mask", man.mask), ("library_dir", man.library_dir),
                    ("label raster", lab)):
        if p is not None and not Path(p).exists():
            raise OrbitmlInputError(f"{what} not found: {p}", path)
    if man.classes is not None:
        for name, spec in man.classes.items():
            if not Path(spec.library).exists():
                raise OrbitmlInputError(f"library of class {name!r} not found: {spec.library}", path)
    if "unclassified" in {c.lower() for c in (man.classes or {})}:
        raise OrbitmlInputError("'Unclassified' is reserved for class 0; rename that class", path)
    return man
