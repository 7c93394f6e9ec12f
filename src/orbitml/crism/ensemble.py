"""The CRISM classifier: an ensemble of HBMs on band subsets, weights and temperature learned on
held-out images, per-class confidence thresholds.  Saved as npz + JSON (never pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from orbitml.crism import bands as cb
from orbitml.crism import classes as cc
from orbitml.crism._pool import in_background, parallel_map
from orbitml.crism.hbm import GroupPlan, HBMClassifier, map_chunks, softmax_rows
from orbitml.crism.preprocess import despike
from orbitml.crism.settings import CrismSettings
from orbitml.errors import OrbitmlInputError

FORMAT_VERSION = 1
# spectra per chunk of the ensemble's per-model evaluation (float64 spectra or models, or no numba).
# Measured on the benchmark's 134k spectra (15 models, 13 classes, AVX-512 core, quiet): 2048 took
# 0.45 s on 2 threads where 512 took 0.67 s (many small products and kernel calls per chunk: Python
# glue holding the GIL between them kept the two threads waiting on each other) and 4096 gained
# nothing more; on one thread 2048 was 4-6% faster than 512.
CHUNK = 2048
# spectra per chunk of the one-call compiled evaluation (float32 models on float32 spectra, the
# default): no Python runs between the models, so chunks can be small enough for every whitening
# block to stay in L2.  Measured on the 134k spectra above (Zen 4 EPYC, 1 MB L2 per core, 2
# threads, medians of 4): 128-384 gave 0.46-0.49 s, 512 0.54 s, 1024 0.62 s, 2048 0.68 s, against
# 0.72 s for the per-model Python loop at 2048 (single thread: 0.82-0.86 s against 1.29 s)
CHUNK_FUSED = 256
OOD_MIN_HELDOUT = 10  # held-out spectra a class needs for its OOD threshold to come from them alone
Progress = Callable[[str], None] | None


def data_hash(*arrays: np.ndarray) -> str:
    """Content hash of training arrays (values, dtype and shape)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def split_images(y: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Image ids to hold out: about ``fraction`` of the images, never a class's last image."""
    rng = np.random.default_rng(seed)
    imgs, g_inv = np.unique(groups, return_inverse=True)
    _, y_inv = np.unique(y, return_inverse=True)
    # which classes each image holds, as a table (images x classes): one sort of each label array
    present = np.zeros((imgs.size, int(y_inv.max(initial=-1)) + 1), dtype=bool)
    present[g_inv.ravel(), y_inv.ravel()] = True
    pos = np.arange(imgs.size)
    rng.shuffle(pos)
    target = int(round(fraction * imgs.size))
    left = present.sum(axis=0)  # images left in training per class
    held = []
    for i in pos:
        if len(held) >= target:
            break
        cls_in = present[i]
        if (left[cls_in] > 1).all():
            held.append(imgs[i])
            left[cls_in] -= 1
    return np.array(held, dtype=groups.dtype)


def _fit_weights(P: np.ndarray, yk: np.ndarray, n_cls: int, classes_first: bool = False) -> np.ndarray:
    """Per-class model weights (M, K), each column on the simplex, minimising class-balanced NLL.

    ``P`` is ``(M, n, K)`` per-model class probabilities on held-out spectra (``(M, K, n)`` with
    ``classes_first``), ``yk`` the class positions.  Weights are a softmax over models of free
    parameters (L-BFGS).
    """
    PT = np.ascontiguousarray(P if classes_first else P.transpose(0, 2, 1))  # (M, K, n): passes run along n
    M, K, n = PT.shape
    counts = np.bincount(yk, minlength=K).astype(float)
    sw = 1.0 / counts[yk]
    sw /= sw.sum()
    ar = np.arange(n)
    PT2 = PT.reshape(M * K, n)  # one matrix-vector product for the gradient
    Py0 = np.ascontiguousarray(PT[:, yk, ar])  # (M, n) each spectrum's probability of its own class
    onehot = np.zeros((n, K))
    onehot[ar, yk] = 1.0

    def fun(theta):
        th = theta.reshape(M, K)
        w = np.exp(th - th.max(axis=0))
        w /= w.sum(axis=0)
        S = np.einsum("mkn,mk->kn", PT, w) + 1e-300  # (K, n)
        Stot = S.sum(axis=0)
        Sy = S[yk, ar]
        loss = -(sw * (np.log(Sy) - np.log(Stot))).sum()
        # dL/dw_mk = sum_i sw_i (P_mik / Stot_i - [k==y_i] P_mik / S_iy)
        G = (PT2 @ (sw / Stot)).reshape(M, K)
        G -= (Py0 * (sw / Sy)) @ onehot
        gth = w * (G - (w * G).sum(axis=0, keepdims=True))
        return loss, gth.ravel()

    res = minimize(fun, np.zeros(M * K), jac=True, method="L-BFGS-B", options={"maxiter": 200})
    th = res.x.reshape(M, K)
    w = np.exp(th - th.max(axis=0))
    return w / w.sum(axis=0)


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """ECE with equal-width confidence bins."""
    conf = np.asarray(conf, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return float("nan")
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        s = bins == b
        if s.any():
            ece += s.mean() * abs(conf[s].mean() - correct[s].mean())
    return float(ece)


def apply_temperature(Q: np.ndarray, T: float) -> np.ndarray:
    L = np.log(np.clip(Q, 1e-300, None)) / T
    L -= L.max(axis=1, keepdims=True)
    E = np.exp(L)
    return E / E.sum(axis=1, keepdims=True)


def _fit_temperature(Q: np.ndarray, yk: np.ndarray) -> float:
    ar = np.arange(yk.size)

    def nll(logt):
        return -np.log(apply_temperature(Q, np.exp(logt))[ar, yk] + 1e-300).mean()

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(50.0)), method="bounded")
    return float(np.exp(res.x))


class CrismClassifier:
    """Ensemble HBM classifier of ratioed CRISM spectra (the 248 main bands, by wavelength).

    ``fit(X, y, groups, wavelengths)``: ``X`` ratioed spectra ``(n, bands)`` on ``wavelengths``
    (nm), ``y`` crism_ml class codes (aliases are merged), ``groups`` image ids.
    ``predict_proba`` returns calibrated combined probabilities, ``predict`` the class codes
    (0 = below the class's confidence threshold).
    """

    def __init__(self, settings: CrismSettings | None = None):
        self.settings = settings or CrismSettings()
        self.ood_threshold_: float | None = None
        self.ood_info_: dict = {}

    # ---------------- training ----------------
    def _subsets(self) -> list[np.ndarray]:
        if self.settings.subsets == "single":
            return [np.arange(self.wavelengths_.size)]
        return cb.ensemble_subsets(self.wavelengths_)

    def _fit_models(self, X, yk, g, rows: np.ndarray | None = None, stats_only: bool = False):
        """One HBM per band subset on the spectra ``X[rows]`` (default all), fitted on 2 worker
        threads (single-threaded BLAS each; the fits are independent, so the result does not depend
        on the thread count); ``stats_only`` stops at each model's sufficient statistics."""
        rows = np.arange(X.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        # rows put in (class, image) order once (each model's compiled pass reads them through
        # ``order``; the numpy path gathers them), and grouped once for all the models
        order = rows[np.lexsort((g[rows], yk[rows]))]
        yk, g = yk[order], g[order]
        plan = GroupPlan(yk, g)

        def one(sub):
            return HBMClassifier(**self._hbm_params()).fit_minmax(X, sub, yk, plan, rows=order, stats_only=stats_only)

        return parallel_map(one, self.subsets_, min(2, os.cpu_count() or 1))

    def _refit_all(self, held_in: list, parts: list) -> list:
        """The models fitted on every image, from those fitted on the held-in images and the
        sufficient statistics of the held-out rows alone (``parts``: the models of
        ``_fit_models(..., rows=held_out_rows, stats_only=True)``), merged by :meth:`HBMStats.merge`:
        the same posterior as refitting from scratch (up to summation order) without revisiting
        the held-in rows."""
        return [HBMClassifier.from_stats(m.stats_.merge(p.stats_), **self._hbm_params())
                for m, p in zip(held_in, parts, strict=True)]

    def _hbm_params(self) -> dict:
        s = self.settings
        return {"kappa0": s.kappa0, "kappa1": s.kappa1, "m_extra": s.m_extra, "compute_dtype": s.compute_dtype}

    @staticmethod
    def _transposed_chunk(X: np.ndarray, rows: np.ndarray, a: int, b: int) -> np.ndarray:
        """Spectra ``X[rows[a:b]]`` as a ``(bands, >= b - a)`` float32 array (bands first, pixels
        last, rows a few cache lines longer than the chunk so they are not a power of 2 long), once
        for all the ensemble's models."""
        from orbitml.crism import _kernels

        XT = np.empty((X.shape[1], b - a + 48), dtype=np.float32)
        _kernels._gather_rows_t(X, rows, a, b, XT)
        return XT

    @staticmethod
    def _packed_plans(plans, subs, cls, wts) -> tuple:
        """The models' float32 plans as the flat arrays :func:`orbitml.crism._kernels._ensemble_chunk`
        reads (bands and centres, whitening blocks and their shifts, classes with their dofs,
        constants, coefficients and weights ``wts``), built once per call for all its chunks."""
        i64 = np.int64
        blocks, shifts, n_rows, n_cols, blk_off = [], [], [], [], [0]
        for p in plans:
            for q, Wt in enumerate(p.Wts):
                blocks.append(Wt.ravel())
                shifts.append(p.shift[q, : Wt.shape[0]])
                n_rows.append(Wt.shape[0])
                n_cols.append(Wt.shape[1])
            blk_off.append(len(blocks))

        def offsets(parts):
            return np.r_[0, np.cumsum([a.size for a in parts])].astype(i64)

        return (np.concatenate(subs).astype(i64), offsets(subs),
                np.concatenate([p.centre for p in plans]).astype(np.float32), np.asarray(blk_off, i64),
                np.concatenate(blocks).astype(np.float32), offsets(blocks), np.asarray(n_rows, i64),
                np.asarray(n_cols, i64), np.concatenate(shifts).astype(np.float32), offsets(shifts),
                np.concatenate(cls).astype(i64), offsets(cls), np.concatenate([p.dof for p in plans]),
                np.concatenate([p.const for p in plans]), np.concatenate([p.coef for p in plans]),
                np.concatenate(wts).astype(np.float64))

    def _learn_ood(self, held: tuple | None, full: tuple | None, min_per_class: int | None = None) -> None:
        """Per-class OOD thresholds on the best-class log-likelihood summed over the models.

        ``held`` and ``full`` are ``(scores, class positions)`` (``None``: not available; ``full`` is
        only computed when some class has fewer than ``min_per_class`` held-out spectra, default
        :data:`OOD_MIN_HELDOUT`).  What matters is what spectra of *new* images reach, so the
        scores in ``held`` (of held-out spectra, under models fitted without their images) set the
        thresholds: for class k,
        ``median_k - z * s_k`` with ``s_k = 1.4826 * MAD_k`` and ``z`` the normal quantile of
        ``1 - ood_quantile`` (a robust low quantile: one odd spectrum does not set it).  A class
        with fewer than ``min_per_class`` held-out spectra borrows strength: its centre is its
        in-sample median under the final models (``full``) minus the median in-sample-minus-held-out
        shift of the classes that have both, and its spread the median ``s_k`` of those classes.
        Without held-out images the in-sample scores are used as they are (optimistic: stricter).
        """
        from statistics import NormalDist

        q = self.settings.ood_quantile
        K = self.classes_.size
        self.ood_threshold_ = None
        self.ood_info_ = {"quantile": q, "rule": "per class: median - z(1-q) * 1.4826 * MAD of the best-class "
                                                 "log-likelihood summed over the models, on held-out images"}
        if q <= 0:
            return
        z = NormalDist().inv_cdf(1.0 - q)

        def stats(part):
            sc, yk = part
            out = {}
            for k in range(K):
                v = sc[yk == k]
                if v.size >= 3:
                    med = float(np.median(v))
                    out[k] = (med, 1.4826 * float(np.median(np.abs(v - med))), v.size)
            return out

        min_per_class = OOD_MIN_HELDOUT if min_per_class is None else min_per_class
        ins = stats(full) if full is not None else {}
        ho = {k: v for k, v in stats(held).items() if v[2] >= min_per_class} if held is not None else {}
        thr = np.full(K, np.nan)
        src = {}
        for k, (med, sd, _) in ho.items():
            thr[k], src[k] = med - z * sd, "held-out images"
        both = [k for k in ho if k in ins]
        shift = float(np.median([ins[k][0] - ho[k][0] for k in both])) if both else 0.0
        spread = float(np.median([ho[k][1] for k in ho])) if ho else None
        for k, (med, sd, _) in ins.items():
            if np.isnan(thr[k]):
                thr[k] = med - shift - z * (spread if spread is not None else sd)
                src[k] = "in-sample, shifted by the held-out classes" if ho else "in-sample (no held-out images)"
        if np.isnan(thr).all():
            return
        thr[np.isnan(thr)] = np.nanmin(thr)
        self.ood_threshold_ = thr
        self.ood_info_.update(threshold_source={str(int(self.classes_[k])): v for k, v in src.items()},
                              insample_shift=shift)

    def _model_probs(self, models, X, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-model class probabilities, classes first ``(M, K, n)``, and the OOD score (best-class
        log-likelihood summed over the models, ``(n,)``) of the spectra ``X[rows]``, in one pass; with
        numba by the fused kernels classification uses (each chunk transposed once for all models)."""
        from orbitml.crism import _kernels

        K, M = self.classes_.size, len(models)
        rows = np.asarray(rows, dtype=np.int64)
        n = rows.size
        PT = np.zeros((M, K, n))
        score = np.zeros(n)
        plans = [m.plan() for m in models]
        subs = [np.asarray(sub, dtype=np.int64) for sub in self.subsets_]
        cls = [np.asarray(m.classes_, dtype=np.int64) for m in models]
        fused = (_kernels.AVAILABLE and X.dtype == np.float32 and X.strides[1] == X.itemsize
                 and all(p.dtype == np.float32 for p in plans))
        if fused:
            packed = self._packed_plans(plans, subs, cls, [np.ones(c.size) for c in cls])

        def run(a, b):
            sc = np.zeros(b - a)
            if fused:  # all models in one compiled call; each adds its softmax into its own rows
                ST = np.zeros((M, K, b - a))
                _kernels._ensemble_chunk(self._transposed_chunk(X, rows, a, b), b - a, *packed, True, ST, sc)
                PT[:, :, a:b] = ST
            else:
                for i, (plan, sub, c) in enumerate(zip(plans, subs, cls, strict=True)):
                    ll = plan(plan.minmax_rows(X, rows, a, b, sub), overwrite=True, centred=True)
                    sc += ll.max(axis=1)
                    PT[i, c, a:b] = softmax_rows(ll).T
            score[a:b] = sc

        map_chunks(run, n, CHUNK_FUSED if fused else CHUNK)
        return PT, score

    def fit(self, X, y, groups, wavelengths, progress: Progress = None, despiked: bool = False) -> CrismClassifier:
        """Fit the ensemble (see the class docstring).  BLAS runs single-threaded throughout:
        every product here is small, and a BLAS thread team on busy cores made the weight
        optimisation (L-BFGS-B on a few hundred parameters) ten times slower."""
        from orbitml.crism.hbm import _single_thread_blas

        with _single_thread_blas():
            return self._fit(X, y, groups, wavelengths, progress, despiked)

    def _fit(self, X, y, groups, wavelengths, progress: Progress, despiked: bool) -> CrismClassifier:
        s = self.settings
        say = progress or (lambda msg: None)
        X = np.asarray(X)
        y = cc.to_train_codes(np.asarray(y).ravel())
        groups = np.asarray(groups).ravel()
        wl = np.asarray(wavelengths, dtype=float)
        if X.ndim != 2 or X.shape[0] != y.size or groups.size != y.size or wl.size != X.shape[1]:
            raise OrbitmlInputError(f"inconsistent training arrays: X {X.shape}, {y.size} labels, "
                                    f"{groups.size} image ids, {wl.size} wavelengths")
        keep = np.isin(y, list(cc.CLASSES))
        main = cb.main_band_mask(wl)
        if main.sum() < 31:
            raise OrbitmlInputError(f"only {main.sum()} training bands lie in 1021-2648 nm")
        self.wavelengths_ = wl[main]
        # one gather of the kept spectra's main bands, in float32; despiked in place (the main bands
        # of a sorted wavelength table are one run: a slice, so the float32 copy is the only pass)
        mi = np.flatnonzero(main)
        cols = slice(mi[0], mi[-1] + 1) if mi[-1] - mi[0] + 1 == mi.size else mi
        X = np.ascontiguousarray((X[:, cols] if keep.all() else X[keep][:, cols]), dtype=np.float32)
        y, groups = y[keep], groups[keep]
        if not despiked:
            say("despiking training spectra")
            X, _ = despike(X, s.despike_passes, protect=s.despike_protect, copy=False)
        self.classes_ = np.unique(y)
        yk = np.searchsorted(self.classes_, y)
        self.subsets_ = self._subsets()
        held = split_images(yk, groups, s.heldout_fraction, s.seed) if s.heldout_fraction > 0 else np.array([])
        held_part = None
        M, K = len(self.subsets_), self.classes_.size
        self.weights_ = np.full((M, K), 1.0 / M)
        self.temperature_ = 1.0
        self.calibration_ = {}
        if held.size >= 2:
            rng = np.random.default_rng(s.seed)
            held = rng.permutation(held)
            h_w, h_t = held[::2], held[1::2]
            fit_sel = ~np.isin(groups, held)
            say(f"fitting {M} HBMs on {np.unique(groups[fit_sel]).size} images")
            models = self._fit_models(X, yk, groups, rows=np.flatnonzero(fit_sel))
            sel_w = self._subsample(np.isin(groups, h_w), yk, rng)  # weights
            sel_t = self._subsample(np.isin(groups, h_t), yk, rng)  # temperature
            sel_o = self._subsample(np.isin(groups, held), yk, rng)  # OOD thresholds
            # one pass of the held-in models over the held-out spectra any of the three uses
            union = sel_w | sel_t | sel_o
            at = np.cumsum(union) - 1  # position of a selected spectrum among the union's
            P, score = self._model_probs(models, X, np.flatnonzero(union))  # (M, K, n)
            # the held-out rows' statistics for the refit do not depend on what follows: computed
            # on a background worker while the weights and temperature are fitted (serial work)
            parts = (in_background(self._fit_models, X, yk, groups, rows=np.flatnonzero(~fit_sel), stats_only=True)
                     if s.refit_full else None)
            say(f"learning per-class weights on {h_w.size} held-out images")
            self.weights_ = _fit_weights(np.take(P, at[sel_w], axis=2), yk[sel_w], K, classes_first=True)
            Q = self._combine(np.take(P, at[sel_t], axis=2))  # take: a C-ordered copy in one pass
            self.temperature_ = _fit_temperature(Q, yk[sel_t])
            Qt = apply_temperature(Q, self.temperature_)
            yt = yk[sel_t]
            # out-of-distribution thresholds: what spectra of images the models never saw reach
            held_part = (score[at[sel_o]], yk[sel_o])
            del P
            self.calibration_ = {
                "images": [str(v) for v in h_t], "n_spectra": int(sel_t.sum()),
                "ece_before": expected_calibration_error(Q.max(1), Q.argmax(1) == yt),
                "ece_after": expected_calibration_error(Qt.max(1), Qt.argmax(1) == yt),
                "accuracy": float((Q.argmax(1) == yt).mean()), "temperature": self.temperature_}
            if not s.refit_full:
                self.models_ = models
        if held.size >= 2 and s.refit_full:
            say(f"adding the {held.size} held-out images to the {M} HBMs")
            self.models_ = self._refit_all(models, parts.result())
        elif held.size < 2:
            say(f"fitting {M} HBMs on all {np.unique(groups).size} images")
            self.models_ = self._fit_models(X, yk, groups)
        for m in self.models_:  # the statistics are for refitting; the fitted model does not need them
            m.__dict__.pop("stats_", None)
        if s.ood_quantile > 0:
            # in-sample scores under the final models (by the path classification takes) are needed only
            # for classes with too few held-out spectra: up to 500 of each of those, and 200 of each other
            # class for the in-sample-minus-held-out shift they are corrected by
            n_ho = np.bincount(held_part[1], minlength=K) if held_part is not None else np.zeros(K, int)
            lacking = n_ho < OOD_MIN_HELDOUT
            full = None
            if lacking.any():
                caps = np.where(lacking, 500, 200)
                sub = self._subsample(np.ones(yk.size, bool), yk, np.random.default_rng(s.seed), per_class=caps)
                _, score = self.predict_scores(X, rows=np.flatnonzero(sub))
                full = (score, yk[sub])
            self._learn_ood(held_part, full)
        else:
            self._learn_ood(None, None)  # disabled: records the rule, no thresholds
        n_img = np.array([np.unique(groups[yk == k]).size for k in range(K)])
        self.n_images_ = n_img
        self.thresholds_ = np.where(n_img < s.rare_min_images, s.threshold_rare, s.threshold)
        self.heldout_images_ = [str(v) for v in held]
        return self

    @staticmethod
    def _subsample(mask: np.ndarray, yk: np.ndarray, rng, per_class: int | np.ndarray = 2000) -> np.ndarray:
        """At most ``per_class`` (a number, or one per class position) of the ``mask`` spectra of each class."""
        idx = np.flatnonzero(mask)
        out = []
        for k in np.unique(yk[idx]):
            ik = idx[yk[idx] == k]
            cap = int(per_class[k]) if np.ndim(per_class) else int(per_class)
            out.append(ik if ik.size <= cap else rng.choice(ik, cap, replace=False))
        sel = np.zeros(mask.size, bool)
        if out:
            sel[np.concatenate(out)] = True
        return sel

    def _combine(self, P: np.ndarray) -> np.ndarray:
        """Weighted combination ``(n, K)`` of per-model probabilities ``(M, K, n)``."""
        S = np.einsum("mkn,mk->nk", P, self.weights_)
        return S / np.clip(S.sum(axis=1, keepdims=True), 1e-300, None)

    # ---------------- prediction ----------------
    def predict_proba(self, X: np.ndarray, calibrated: bool = True, threads: int | None = None,
                      chunk: int | None = None) -> np.ndarray:
        """Combined class probabilities ``(n, K)`` of main-band ratioed spectra (model band order)."""
        return self.predict_scores(X, calibrated, threads, chunk)[0]

    def predict_scores(self, X: np.ndarray, calibrated: bool = True, threads: int | None = None,
                       chunk: int | None = None, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities (n, K), OOD score (n,))``: the score is the best-class log-likelihood
        summed over the models (compared with :attr:`ood_threshold_`).

        ``rows`` (indices) picks the spectra of ``X`` to score (default all), without copying
        them first.  Works on row chunks spread over ``threads`` workers: each chunk goes
        through every model (band subset, min-max scaling, Student-t, softmax) and the weighted
        combination while it is in cache; no per-model array of the whole image is built.
        """
        from orbitml.crism import _kernels

        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.wavelengths_.size:
            raise OrbitmlInputError(f"expected spectra on the model's {self.wavelengths_.size} bands, got {X.shape}")
        rows = np.arange(X.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        K = self.classes_.size
        out = np.empty((rows.size, K))
        score = np.empty(rows.size)
        plans = [m.plan() for m in self.models_]
        subs = [np.asarray(sub, dtype=np.int64) for sub in self.subsets_]
        cls = [np.asarray(m.classes_, dtype=np.int64) for m in self.models_]
        wts = [np.ascontiguousarray(self.weights_[i, c], dtype=np.float64) for i, c in enumerate(cls)]
        fused = _kernels.AVAILABLE
        transposed = fused and X.dtype == np.float32 and X.strides[1] == X.itemsize and all(
            p.dtype == np.float32 for p in plans)

        if transposed:
            packed = self._packed_plans(plans, subs, cls, wts)

        def run(a, b):
            sc = np.zeros(b - a)
            if transposed:  # the chunk transposed once, then every model in one compiled call
                ST = np.zeros((1, K, b - a))
                _kernels._ensemble_chunk(self._transposed_chunk(X, rows, a, b), b - a, *packed, False, ST, sc)
                S = ST[0].T
            elif fused:  # classes first, pixels last (see StudentTPlan): every pass runs along the pixels
                ST = np.zeros((K, b - a))
                for plan, sub, c, w in zip(plans, subs, cls, wts, strict=True):
                    ll = plan.log1p_terms_t(plan.minmax_rows(X, rows, a, b, sub), overwrite=True, centred=True)
                    _kernels._loglik_shift_max_t(ll, plan.const, plan.coef, sc)
                    _kernels._exp_weighted_add_t(ll, c, w, ST)  # the softmax's exp, weights, scatter
                S = ST.T
            else:
                S = np.zeros((b - a, K))
                for plan, sub, c, w in zip(plans, subs, cls, wts, strict=True):
                    ll = plan(plan.minmax_rows(X, rows, a, b, sub), overwrite=True, centred=True)
                    sc += ll.max(axis=1)
                    p = softmax_rows(ll)
                    p *= w
                    S[:, c] += p
            S /= np.clip(S.sum(axis=1, keepdims=True), 1e-300, None)
            out[a:b] = apply_temperature(S, self.temperature_) if calibrated else S
            score[a:b] = sc

        map_chunks(run, rows.size, chunk or (CHUNK_FUSED if transposed else CHUNK), threads)
        return out, score

    def predict(self, X: np.ndarray, threads: int | None = None, reject_ood: bool = True,
                rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, confidence)`` of the spectra ``X[rows]`` (default all); codes below the
        class's threshold become 0 (unclassified) and, with ``reject_ood``, spectra below the
        stored OOD threshold :data:`classes.UNKNOWN`."""
        Q, score = self.predict_scores(X, threads=threads, rows=rows)
        k = Q.argmax(axis=1)
        conf = Q[np.arange(k.size), k]
        codes = self.classes_[k].copy()
        codes[conf < self.thresholds_[k]] = cc.UNCLASSIFIED
        if reject_ood and self.ood_threshold_ is not None:
            codes[~(score >= self.ood_threshold_[k])] = cc.UNKNOWN
        return codes, conf

    # ---------------- persistence ----------------
    def save(self, folder: str | os.PathLike, extra: dict | None = None, bland=None) -> Path:
        """Write ``model.npz`` (arrays) and ``model.json`` (card) into ``folder`` atomically."""
        from orbitml.io.atomic import atomic_path

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"wavelengths": self.wavelengths_, "classes": self.classes_, "weights": self.weights_,
                  "thresholds": self.thresholds_, "n_images": self.n_images_,
                  "temperature": np.array([self.temperature_]),
                  "ood_threshold": (np.full(self.classes_.size, np.nan) if self.ood_threshold_ is None
                                    else np.asarray(self.ood_threshold_, float))}
        for i, (m, sub) in enumerate(zip(self.models_, self.subsets_, strict=True)):
            arrays[f"subset{i}"] = sub
            arrays.update(m.to_arrays(f"m{i}_"))
        if bland is not None:
            arrays.update(bland.to_arrays())
        card = {
            "format": "orbitml.crism", "format_version": FORMAT_VERSION,
            "settings": self.settings.model_dump(),
            "classes": [{"code": int(c), "name": cc.name(c), "broad": cc.broad_name(c),
                         "threshold": float(t), "n_images": int(n)}
                        for c, t, n in zip(self.classes_, self.thresholds_, self.n_images_, strict=True)],
            "n_models": len(self.models_), "temperature": self.temperature_, "calibration": self.calibration_,
            "heldout_images": self.heldout_images_, "has_bland_model": bland is not None,
            "ood": self.ood_info_,
            "wavelength_range_nm": [float(self.wavelengths_.min()), float(self.wavelengths_.max())],
            **(extra or {}),
        }
        with atomic_path(folder / "model.npz", overwrite=True) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        with atomic_path(folder / "model.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(card, indent=2, default=float), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike):
        """Load ``(classifier, bland_model_or_None, card)`` from a model folder (no pickle)."""
        folder = Path(folder)
        card_p, npz_p = folder / "model.json", folder / "model.npz"
        if not card_p.is_file() or not npz_p.is_file():
            raise OrbitmlInputError("not a CRISM model folder (model.json and model.npz expected)", folder)
        from orbitml.io.manifest import validate_manifest
        from orbitml.io.text import read_text

        try:
            card = json.loads(read_text(card_p, "model card"))
        except json.JSONDecodeError as exc:
            raise OrbitmlInputError(f"model card is not valid JSON ({exc})", card_p) from None
        if not isinstance(card, dict) or card.get("format") != "orbitml.crism" or not (
                isinstance(card.get("format_version", 0), int) and card.get("format_version", 0) <= FORMAT_VERSION):
            raise OrbitmlInputError("model card is not an orbitml CRISM model of a known version", card_p)
        n_models = card.get("n_models")
        if not isinstance(card.get("settings"), dict) or not isinstance(n_models, int) or not 1 <= n_models <= 1000:
            raise OrbitmlInputError("model card lacks its settings or a model count (n_models) in 1..1000", card_p)
        self = cls(validate_manifest(card["settings"], CrismSettings, card_p))
        try:
            return self._load_arrays(npz_p, card, folder)
        except KeyError as exc:
            raise OrbitmlInputError(f"model.npz lacks the array {exc} that the card promises", npz_p) from None
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise OrbitmlInputError(f"model.npz cannot be read ({exc})", npz_p) from None

    def _load_arrays(self, npz_p: Path, card: dict, folder: Path):
        from orbitml.crism.ratio import BlandModel

        with np.load(npz_p, allow_pickle=False) as a:
            self.wavelengths_ = a["wavelengths"]
            self.classes_ = a["classes"]
            self.weights_ = a["weights"]
            self.thresholds_ = a["thresholds"]
            self.n_images_ = a["n_images"]
            self.temperature_ = float(a["temperature"][0])
            ood = a["ood_threshold"] if "ood_threshold" in a.files else np.array([np.nan])
            self.ood_threshold_ = ood if ood.size == self.classes_.size and np.isfinite(ood).all() else None
            self.subsets_ = [a[f"subset{i}"] for i in range(card["n_models"])]
            dt = self.settings.compute_dtype
            self.models_ = [HBMClassifier.from_arrays(a, f"m{i}_", compute_dtype=dt)
                            for i in range(card["n_models"])]
            bland = BlandModel.from_arrays(a) if card.get("has_bland_model") else None
        self.calibration_ = card.get("calibration", {})
        self.ood_info_ = card.get("ood", {})
        self.heldout_images_ = card.get("heldout_images", [])
        return self, bland, card
