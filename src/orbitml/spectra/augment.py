"""Seeded, vectorised augmentation of spectral libraries.

Each generator is a small object with ``__call__(X, rng, wavelength=None) -> X`` that transforms a
batch of spectra ``X`` (n, n_bands) in one numpy operation; :class:`Compose` chains them, and
:func:`augment_library` draws ``n_per_class`` spectra per class from a library::

    aug = Compose([Mixture(others=lib, min_fraction=0.7), Offset(0.02), Scale(0.85, 1.15),
                   Tilt(0.05), BandNoise(snr=200)])
    X, y = augment_library(lib, n_per_class=10_000, augmenter=aug, random_state=0)

Every class draws from its own child of ``SeedSequence(random_state)``, so the spectra of one
class do not depend on how many other classes there are, and the same seed gives the same result
bit for bit.

Generators
----------
* :class:`Offset` random additive offset per spectrum (stochastic offset perturbation);
* :class:`Scale` multiplicative illumination/albedo scaling per spectrum;
* :class:`Tilt` continuum tilt: multiplication by a linear ramp across the wavelength range;
* :class:`Mixture` sub-pixel mixtures with other classes or a background set: the class keeps a
  fraction drawn uniformly in ``[min_fraction, 1]`` (so its label stays true), the remainder is
  split over ``n_others`` spectra by a Dirichlet draw;
* :class:`BandNoise` Gaussian noise with a per-band SNR (scalar, per-band array, or a function of
  wavelength), signal dependent (``sigma_b = |x_b| / SNR_b``) or referred to a fixed level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError

__all__ = ["Offset", "Scale", "Tilt", "Mixture", "BandNoise", "Compose", "augment_library", "default_augmenter"]


def _range(v: float | tuple[float, float], what: str) -> tuple[float, float]:
    lo, hi = (-abs(v), abs(v)) if np.isscalar(v) else (float(v[0]), float(v[1]))
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        raise OrbitmlInputError(f"{what}: need a finite range low <= high, got {v!r}")
    return lo, hi


@dataclass
class Offset:
    """Add a random offset per spectrum, uniform in ``[-amount, amount]`` (or ``(low, high)``)."""

    amount: float | tuple[float, float] = 0.01

    def __call__(self, X: np.ndarray, rng: np.random.Generator, wavelength: np.ndarray | None = None):
        lo, hi = _range(self.amount, "Offset")
        return X + rng.uniform(lo, hi, size=(X.shape[0], 1))


@dataclass
class Scale:
    """Multiply each spectrum by a factor uniform in ``[low, high]`` (illumination, albedo)."""

    low: float = 0.9
    high: float = 1.1

    def __call__(self, X: np.ndarray, rng: np.random.Generator, wavelength: np.ndarray | None = None):
        if not 0 < self.low <= self.high:
            raise OrbitmlInputError(f"Scale: need 0 < low <= high, got {self.low}, {self.high}")
        return X * rng.uniform(self.low, self.high, size=(X.shape[0], 1))


@dataclass
class Tilt:
    """Multiply by ``1 + s * t`` with ``t`` running from -1 to 1 across the wavelength range and
    ``s`` uniform in ``[-max_slope, max_slope]`` (a continuum tilt, e.g. grain size or slope)."""

    max_slope: float = 0.05

    def __call__(self, X: np.ndarray, rng: np.random.Generator, wavelength: np.ndarray | None = None):
        if not 0 <= self.max_slope < 1:
            raise OrbitmlInputError(f"Tilt: max_slope must be in [0, 1), got {self.max_slope}")
        b = X.shape[1]
        w = np.arange(b, dtype=float) if wavelength is None else np.asarray(wavelength, dtype=float)
        span = w.max() - w.min()
        t = (2.0 * (w - w.min()) / span - 1.0) if span > 0 else np.zeros(b)
        s = rng.uniform(-self.max_slope, self.max_slope, size=(X.shape[0], 1))
        return X * (1.0 + s * t[None, :])


@dataclass
class Mixture:
    """Mix each spectrum with ``n_others`` spectra drawn from ``others`` (rows).

    The spectrum keeps a fraction ``f ~ U(min_fraction, 1)``; the rest ``1 - f`` is split by a
    ``Dirichlet(alpha)`` draw.  When augmenting a library, ``others=None`` means "the other classes
    of the library" (the class itself is never its own contaminant).
    """

    others: np.ndarray | None = None
    min_fraction: float = 0.7
    n_others: int = 2
    alpha: float = 1.0

    def __call__(self, X: np.ndarray, rng: np.random.Generator, wavelength: np.ndarray | None = None,
                 others: np.ndarray | None = None):
        pool = self.others if others is None else others
        if pool is None:
            raise OrbitmlInputError("Mixture: no spectra to mix with (give others=...)")
        pool = np.atleast_2d(np.asarray(pool, dtype=float))
        if pool.shape[1] != X.shape[1]:
            raise OrbitmlInputError(f"Mixture: others have {pool.shape[1]} bands, the spectra {X.shape[1]}")
        if not 0 < self.min_fraction <= 1:
            raise OrbitmlInputError(f"Mixture: min_fraction must be in (0, 1], got {self.min_fraction}")
        if self.n_others < 1 or self.alpha <= 0:
            raise OrbitmlInputError("Mixture: n_others must be >= 1 and alpha > 0")
        n = X.shape[0]
        f = rng.uniform(self.min_fraction, 1.0, size=(n, 1))
        w = rng.dirichlet(np.full(self.n_others, self.alpha), size=n)  # (n, k)
        pick = rng.integers(0, pool.shape[0], size=(n, self.n_others))
        contam = np.einsum("nk,nkb->nb", w, pool[pick])
        return f * X + (1.0 - f) * contam


@dataclass
class BandNoise:
    """Gaussian noise with a per-band SNR model.

    ``snr`` is a number, an array (n_bands,), or a callable ``snr(wavelength) -> array``.
    With ``reference=None`` the noise is signal dependent, ``sigma_b = |x_b| / SNR_b``; with a
    ``reference`` level (e.g. the reflectance at which the instrument SNR is specified) it is
    additive, ``sigma_b = reference / SNR_b``.
    """

    snr: float | np.ndarray | Callable[[np.ndarray], np.ndarray] = 200.0
    reference: float | None = None

    def snr_per_band(self, n_bands: int, wavelength: np.ndarray | None) -> np.ndarray:
        if callable(self.snr):
            if wavelength is None:
                raise OrbitmlInputError("BandNoise: an SNR model of wavelength needs the wavelengths")
            snr = np.asarray(self.snr(np.asarray(wavelength, dtype=float)), dtype=float)
        else:
            snr = np.asarray(self.snr, dtype=float)
        snr = np.broadcast_to(snr, (n_bands,)) if snr.ndim == 0 or snr.size == n_bands else None
        if snr is None:
            raise OrbitmlInputError(f"BandNoise: the SNR model gives {np.size(self.snr)} values for {n_bands} bands")
        if not (np.isfinite(snr).all() and (snr > 0).all()):
            raise OrbitmlInputError("BandNoise: SNR values must be finite and positive")
        return snr

    def __call__(self, X: np.ndarray, rng: np.random.Generator, wavelength: np.ndarray | None = None):
        snr = self.snr_per_band(X.shape[1], wavelength)
        scale = (np.abs(X) if self.reference is None else float(self.reference)) / snr[None, :]
        return X + rng.standard_normal(X.shape) * scale


class Compose:
    """Apply generators in order; a :class:`Mixture` without ``others`` gets the library's other classes."""

    def __init__(self, steps: Sequence[Any]):
        self.steps = list(steps)
        for s in self.steps:
            if not callable(s):
                raise OrbitmlInputError(f"augmentation step {s!r} is not callable")

    def __call__(self, X: np.ndarray, rng: np.random.Generator, wavelength: np.ndarray | None = None,
                 others: np.ndarray | None = None):
        for step in self.steps:
            if isinstance(step, Mixture):
                if step.others is None and others is None:
                    continue  # nothing else to mix with (a one-class library)
                X = step(X, rng, wavelength, others=others)
            else:
                X = step(X, rng, wavelength)
        return X


def default_augmenter(snr: float = 200.0) -> Compose:
    """Offsets +-0.02, scaling 0.85-1.15, tilt +-5 %, mixtures keeping >= 70 %, per-band SNR noise."""
    return Compose([Mixture(min_fraction=0.7), Offset(0.02), Scale(0.85, 1.15), Tilt(0.05), BandNoise(snr=snr)])


def augment_library(
    spectra: np.ndarray,
    n_per_class: int,
    augmenter: Callable | None = None,
    *,
    labels: Sequence[Any] | None = None,
    wavelength: np.ndarray | None = None,
    background: np.ndarray | None = None,
    include_original: bool = False,
    random_state: Any = None,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_per_class`` augmented spectra for each library spectrum (one class per row).

    Returns ``(X, y)``: ``X`` (n_classes * n_per_class, n_bands) and ``y`` the class label per row
    (``labels[i]`` or the row number).  Mixtures use ``background`` when given, else the other
    classes.  ``include_original`` puts the clean spectrum first in each class block.
    """
    S = np.atleast_2d(np.asarray(spectra, dtype=np.float64))
    if S.ndim != 2 or S.shape[0] == 0:
        raise OrbitmlInputError(f"spectra must be a (n_classes, n_bands) array, got shape {S.shape}")
    if labels is not None and len(labels) != S.shape[0]:
        raise OrbitmlInputError(f"{len(labels)} labels for {S.shape[0]} spectra")
    return augment_classes(S, np.arange(S.shape[0]), n_per_class, augmenter, class_names=labels,
                           wavelength=wavelength, background=background, include_original=include_original,
                           random_state=random_state, dtype=dtype)


def augment_classes(
    spectra: np.ndarray,
    classes: Sequence[int] | np.ndarray,
    n_per_class: int,
    augmenter: Callable | None = None,
    *,
    class_names: Sequence[Any] | None = None,
    wavelength: np.ndarray | None = None,
    background: np.ndarray | None = None,
    include_original: bool = False,
    random_state: Any = None,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Augment endmember bundles: ``n_per_class`` spectra for each *class*, drawn from its member spectra.

    ``classes[i]`` is the class index (0..k-1) of library row ``i``; a class may hold many spectra (an
    endmember bundle, e.g. several kaolinite samples).  Each augmented spectrum starts from one member
    chosen at random (seeded per class), so the members' own variability is kept.  Mixtures use
    ``background`` when given, else the spectra of the other classes.  ``include_original`` puts the
    clean members first in each class block (as many as fit).  Returns ``(X, y)`` with ``y`` the
    class name (or index) per row, blocks of ``n_per_class`` in class order.
    """
    S = np.atleast_2d(np.asarray(spectra, dtype=np.float64))
    cls = np.asarray(classes)
    if cls.shape != (S.shape[0],) or not np.issubdtype(cls.dtype, np.integer):
        raise OrbitmlInputError(f"classes must give one integer class per spectrum ({S.shape[0]}), got {cls.shape}")
    k = int(cls.max()) + 1 if cls.size else 0
    if k == 0 or cls.min() < 0:
        raise OrbitmlInputError("classes must be integers 0..k-1")
    empty = [c for c in range(k) if not np.any(cls == c)]
    if empty:
        names = [class_names[c] if class_names is not None else c for c in empty]
        raise OrbitmlInputError(f"classes {names} have no spectra")
    if class_names is not None and len(class_names) != k:
        raise OrbitmlInputError(f"{len(class_names)} class names for {k} classes")
    if not np.isfinite(S).all():
        bad = np.flatnonzero(~np.isfinite(S).all(axis=1)).tolist()
        raise OrbitmlInputError(f"library spectra {bad[:10]} hold NaN/inf (missing bands): drop or fill them first")
    n = int(n_per_class)
    if n < 1:
        raise OrbitmlInputError(f"n_per_class must be >= 1, got {n_per_class}")
    if wavelength is not None and np.size(wavelength) != S.shape[1]:
        raise OrbitmlInputError(f"{np.size(wavelength)} wavelengths for {S.shape[1]} bands")
    if background is not None:
        background = np.atleast_2d(np.asarray(background, dtype=np.float64))
        if background.shape[1] != S.shape[1]:
            raise OrbitmlInputError(f"background has {background.shape[1]} bands, the library {S.shape[1]}")
    aug = augmenter if augmenter is not None else default_augmenter()
    children = np.random.SeedSequence(random_state).spawn(k)
    X = np.empty((k * n, S.shape[1]), dtype=dtype)
    for c in range(k):
        rng = np.random.default_rng(children[c])
        members = np.flatnonzero(cls == c)
        # one member: no draw (so one spectrum per class gives what augment_library always gave)
        block = np.repeat(S[members], n, axis=0) if members.size == 1 else S[rng.choice(members, size=n)]
        others = background if background is not None else (S[cls != c] if k > 1 else None)
        out = aug(block, rng, wavelength, others=others) if isinstance(aug, Compose) else aug(block, rng, wavelength)
        if include_original:
            m = min(len(members), n)
            out[:m] = S[members[:m]]
        X[c * n: (c + 1) * n] = out
    lab = np.arange(k) if class_names is None else np.asarray(class_names)
    return X, np.repeat(lab, n)
