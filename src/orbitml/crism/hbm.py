"""Hierarchical Bayesian model (HBM) classifier with a closed-form Student-t posterior predictive.

Model (per class k, image j, pixel i), as in crism_ml (Plebani et al. 2022)::

    x_ijk ~ N(mu_jk, S_k)          mu_jk ~ N(mu_k, S_k / kappa1)
    mu_k  ~ N(mu0, S_k / kappa0)   S_k   ~ IW(S0, m)

With n_jk pixels, mean xbar_jk and scatter matrix C_jk per (class, image)::

    kap_j   = n_jk kappa1 / (n_jk + kappa1)          kap = sum_j kap_j + kappa0
    mean_k  = (sum_j kap_j xbar_jk + kappa0 mu0) / kap
    kbar    = kap kappa1 / (kap + kappa1)
    dof_k   = sum_j (n_jk - 1) + m - d + 1
    scale_k = (S0 (m - d - 1) + sum_j C_jk) (kbar + 1) / (kbar dof_k)

and the posterior predictive of a new pixel is the multivariate Student-t
``t(x | mean_k, scale_k, dof_k)``.  mu0 and S0 are the class-balanced averages of the per-image
means and covariances.  Prediction evaluates all pixels and all classes at once: one matrix
product per chunk of pixels with the stacked inverse Cholesky factors, no loop over pixels.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dtrtri
from scipy.special import gammaln

from orbitml.crism._pool import parallel_map
from orbitml.errors import OrbitmlInputError

_CONTROLLER = []
# whitened coordinates per class in one block product of StudentTPlan.  Measured on an AVX-512 core
# (benchmark scene, 13 classes of 31-55 bands, chunks of 2048 spectra): 8 was 5-8% faster than 4 on 2
# threads (half the products) and level on one; the one-class bland model (216 bands) took 19% less
# time with 32 than with 8 (a product only 8 rows tall keeps the BLAS kernel far from its rate).
_BLOCK_WIDTH_MANY, _BLOCK_WIDTH_ONE = 8, 32


def _single_thread_blas():
    """Limit BLAS/LAPACK to one thread (a no-op context when threadpoolctl is unavailable).

    The library discovery of threadpoolctl (a scan of the loaded shared objects, ~15 ms) is done
    once per process; each call then only sets and restores the limits.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1)


class GroupPlan:
    """The (class, image) grouping of training rows, computed once for any number of models
    fitted on the same labels (the ensemble fits 15 band subsets of the same spectra).

    ``classes``: the sorted class labels; ``order``: the row permutation that makes groups
    contiguous runs, sorted by class (``None`` when the rows already are); ``starts``, ``counts``:
    each group's first row (in that order) and size; ``cls``: each group's class position.
    """

    def __init__(self, y: np.ndarray, groups: np.ndarray):
        self.classes = np.unique(y)
        key_c = np.searchsorted(self.classes, y)
        _, g_inv = np.unique(groups, return_inverse=True)
        key = key_c.astype(np.int64) * (int(g_inv.max()) + 1) + g_inv
        if key.size < 2 or bool((key[1:] >= key[:-1]).all()):  # already in (class, image) order
            self.order, ks = None, key
        else:
            self.order = np.argsort(key, kind="stable")
            ks = key[self.order]
        self.starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        self.counts = np.diff(np.r_[self.starts, ks.size])
        self.cls = key_c[self.starts] if self.order is None else key_c[self.order[self.starts]]
        self.n_rows = int(key.size)


def _group_stats(X: np.ndarray, gp: GroupPlan):
    """Per (class, image) group of ``gp``, sorted by class: class position, count, mean; and the
    rows sorted the same way (float64), centred on their group's mean, with the groups' row
    offsets.

    The scatter matrices are not formed group by group: every weighted sum of them the model
    needs is one matrix product of the centred rows (see :meth:`HBMClassifier.fit`).
    """
    if gp.order is None:
        Xo = np.array(X, dtype=np.float64)  # a copy (centred in place below)
    else:
        Xo = np.take(X, gp.order, axis=0).astype(np.float64, copy=False)  # one gather: groups contiguous
    means = np.add.reduceat(Xo, gp.starts, axis=0) / gp.counts[:, None]
    Xo -= np.repeat(means, gp.counts, axis=0)
    return gp.cls, gp.counts.astype(np.float64), means, Xo, gp.starts


def softmax_rows(ll: np.ndarray) -> np.ndarray:
    """Row-wise softmax of log-likelihoods (flat priors), in place."""
    ll -= ll.max(axis=1, keepdims=True)
    np.exp(ll, out=ll)
    ll /= ll.sum(axis=1, keepdims=True)
    return ll


class StudentTPlan:
    """Precomputed arrays to evaluate K multivariate Student-t log densities on row chunks.

    ``chol_inv[k]`` is the inverse of the lower Cholesky factor of scale k, ``logdet_half[k]``
    the sum of the logs of that factor's diagonal.  Matrix products with the stacked factors give
    every class's whitened vector; rows are first centred on the mean of the class means, which
    keeps float32 products accurate (the per-class shifts are computed in float64).

    The work is laid out with pixels last (*transposed*): a chunk of ``m`` spectra is a
    ``(d, m)`` array, the whitened vectors ``(K * d, m)``, and the squared distances ``(K, m)``,
    so every loop after the products runs along pixels in whole SIMD vectors, with no
    horizontal sums.  The factors are lower triangular (whitened coordinate ``i`` depends on
    bands ``0..i`` only), so the coordinates are cut into blocks of :attr:`width`: block ``b``
    (coordinates ``[e_b, e_b+1)`` of all K classes) is one product with the first ``e_b+1``
    bands, and most of the zeros above the diagonal are skipped.
    """

    def __init__(self, mean: np.ndarray, chol_inv: np.ndarray, logdet_half: np.ndarray, dof: np.ndarray,
                 dtype=np.float64):
        K, d, _ = chol_inv.shape
        self.K, self.d, self.dtype = K, d, np.dtype(dtype)
        self.width = w = min(d, _BLOCK_WIDTH_MANY if K > 1 else _BLOCK_WIDTH_ONE)
        self.edges = e = np.r_[np.arange(0, d, w), d].astype(np.int64)
        nb = e.size - 1
        centre = mean.mean(axis=0)
        self.centre = centre.astype(self.dtype)
        wv = np.einsum("kij,kj->ki", chol_inv, mean - centre)  # (K, d) whitened class means
        # Wts[b][k * wb + i - e_b, j] = chol_inv[k, i, j] for the block's coordinates i, bands j < e_b+1
        self.Wts = [np.ascontiguousarray(chol_inv[:, e[q]:e[q + 1], :e[q + 1]].reshape(-1, e[q + 1]),
                                         dtype=self.dtype) for q in range(nb)]
        shift = np.zeros((nb, K * w))
        for q in range(nb):
            shift[q, : K * (e[q + 1] - e[q])] = wv[:, e[q]:e[q + 1]].reshape(-1)
        self.shift = shift.astype(self.dtype)
        self.dof = np.asarray(dof, dtype=np.float64)
        self.const = (gammaln((dof + d) / 2) - gammaln(dof / 2) - 0.5 * d * np.log(dof * np.pi) - logdet_half)
        self.coef = 0.5 * (self.dof + d)

    def minmax_rows(self, X: np.ndarray, rows: np.ndarray, a: int, b: int, sub: np.ndarray) -> np.ndarray:
        """Rows ``rows[a:b]`` of ``X``, bands ``sub``, min-max scaled in ``X``'s dtype and
        centred in the plan's: ``minmax_rows(X[rows[a:b]][:, sub])`` ready for ``centred=True``,
        gathered, scaled and centred in one pass (numba) without the intermediate copies.  For
        float32 the result is the ``(m, d)`` view of a C-ordered ``(d, m)`` array (the layout
        the evaluation works in)."""
        from orbitml.crism import _kernels
        from orbitml.crism.preprocess import minmax_rows

        if _kernels.AVAILABLE and X.dtype == self.dtype == np.float32 and X.strides[1] == X.itemsize:
            outT = np.empty((sub.size, b - a), dtype=self.dtype)
            _kernels._minmax_centre_cols_f32(X, rows, a, b, sub, self.centre, outT)
            return outT.T
        out = np.empty((b - a, sub.size), dtype=self.dtype)
        if _kernels.AVAILABLE and X.dtype in (np.float32, np.float64) and X.strides[1] == X.itemsize:
            _kernels._minmax_centre_rows(X, rows, a, b, sub, self.centre, X.dtype.type(1), out)
        else:
            out[...] = minmax_rows(X[rows[a:b]][:, sub])
            out -= self.centre
        return out

    def minmax_t(self, XT: np.ndarray, sub: np.ndarray, m: int) -> np.ndarray:
        """:meth:`minmax_rows` of the first ``m`` pixels of a transposed float32 chunk ``XT``
        ``(bands, >= m)`` (see :func:`orbitml.crism._kernels._gather_rows_t`), as the ``(m, d)``
        view of a ``(d, m)`` array; numba only."""
        from orbitml.crism import _kernels

        outT = np.empty((sub.size, m), dtype=np.float32)
        _kernels._minmax_centre_t(XT, sub, self.centre, outT)
        return outT.T

    def __call__(self, rows: np.ndarray, overwrite: bool = False, centred: bool = False) -> np.ndarray:
        """``(m, K)`` log densities of the ``(m, d)`` rows (one chunk; BLAS as configured).

        ``overwrite=True`` lets an array of the plan's dtype be used as scratch;
        ``centred=True`` says the rows already had :attr:`centre` subtracted.
        """
        ll = self.log1p_terms_t(rows, overwrite, centred)
        ll *= -self.coef[:, None]  # const - coef * log1p(m2 / dof), in place
        ll += self.const[:, None]
        return ll.T

    def log1p_terms_t(self, rows: np.ndarray, overwrite: bool = False, centred: bool = False) -> np.ndarray:
        """``log1p(m2 / dof)`` as a C-ordered ``(K, m)`` float64 array (classes first), with ``m2``
        the squared Mahalanobis distances of the ``(m, d)`` rows: the log density is
        ``const - coef * log1p_terms_t``."""
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.d:
            raise OrbitmlInputError(f"expected rows of {self.d} bands, got shape {rows.shape}")
        XT = rows.T
        if not (XT.dtype == self.dtype and XT.flags.c_contiguous and (overwrite or centred)):
            XT = np.array(XT, dtype=self.dtype, order="C")  # a copy: the rows stay as they are
        if not centred:
            XT -= self.centre[:, None]
        e, K, m = self.edges, self.K, XT.shape[1]
        ZT = np.empty((e.size - 1, K * self.width, m), dtype=self.dtype)
        for q, Wt in enumerate(self.Wts):
            np.matmul(Wt, XT[: e[q + 1]], out=ZT[q, : Wt.shape[0]])
        from orbitml.crism import _kernels

        u = np.empty((K, m))
        if _kernels.AVAILABLE:  # shift, squares and division in one pass along the pixels, SIMD log1p
            _kernels._sq_dist_t(ZT, self.shift, e, self.dof, u)
            _kernels._log1p_rows(u)
        else:
            u[...] = 0.0
            for q in range(e.size - 1):
                wb = e[q + 1] - e[q]
                Zq = ZT[q, : K * wb] - self.shift[q, : K * wb, None]
                u += np.einsum("kim,kim->km", Zq.reshape(K, wb, m), Zq.reshape(K, wb, m))
            u /= self.dof[:, None]
            np.log1p(u, out=u)
        return u


def map_chunks(fn, n_rows: int, chunk: int, threads: int | None = None) -> None:
    """Call ``fn(start, stop)`` on row chunks spread over ``threads`` workers running
    single-threaded BLAS: on shared cores this avoids the stalls of a multi-threaded BLAS team,
    and results do not depend on the thread count."""
    starts = range(0, n_rows, chunk)
    nthreads = min(threads or max(1, min(4, os.cpu_count() or 1)), len(starts))

    def run(s):
        fn(s, min(s + chunk, n_rows))

    with _single_thread_blas():
        parallel_map(run, starts, nthreads)


def student_t_logpdf(X: np.ndarray, mean: np.ndarray, chol_inv: np.ndarray, logdet_half: np.ndarray,
                     dof: np.ndarray, chunk: int = 2048, dtype=np.float64, threads: int | None = None,
                     prepare=None, n_rows: int | None = None, plan: StudentTPlan | None = None,
                     centred: bool = False) -> np.ndarray:
    """Log density of K multivariate Student-t distributions at every row of X: ``(n, K)``.

    See :class:`StudentTPlan`; row chunks run on :func:`map_chunks`.  ``prepare(start, stop)``,
    when given, returns the ``(stop - start, d)`` rows of a chunk (e.g. gathered bands,
    normalised) instead of ``X[start:stop]``, as a new array the evaluation may overwrite;
    ``n_rows`` is then the row count and ``X`` is ignored; ``centred`` says ``prepare`` already
    subtracted ``plan.centre``.
    """
    plan = plan or StudentTPlan(mean, chol_inv, logdet_half, dof, dtype)
    owned = prepare is not None
    if prepare is None:
        X = np.asarray(X)
        n_rows = X.shape[0]

        def prepare(a, b):
            return X[a:b]

    out = np.empty((n_rows, plan.K))

    def run(a, b):
        out[a:b] = plan(prepare(a, b), overwrite=owned, centred=centred)

    map_chunks(run, n_rows, chunk, threads)
    return out


@dataclass
class HBMStats:
    """Sufficient statistics of an HBM fit: per (class, image) group its class position ``cls``
    (into ``classes``, groups sorted by class), size ``n`` and mean; per class the sum of its
    groups' scatter matrices ``C_g`` (``scatter``) and of ``C_g / (n_g - 1)`` over its groups of at
    least two spectra (``T``).  Statistics of disjoint sets of images add: :meth:`merge`."""

    classes: np.ndarray
    cls: np.ndarray
    n: np.ndarray
    means: np.ndarray
    scatter: np.ndarray
    T: np.ndarray

    def merge(self, other: HBMStats) -> HBMStats:
        """The statistics of both parts' spectra (their images must differ: groups are not joined)."""
        if self.means.shape[1] != other.means.shape[1]:
            raise OrbitmlInputError(f"cannot merge statistics of {self.means.shape[1]} and "
                                    f"{other.means.shape[1]} bands")
        classes = np.union1d(self.classes, other.classes)
        d = self.means.shape[1]
        scatter = np.zeros((classes.size, d, d))
        T = np.zeros((classes.size, d, d))
        labels = []
        for part in (self, other):
            pos = np.searchsorted(classes, part.classes)
            scatter[pos] += part.scatter
            T[pos] += part.T
            labels.append(pos[part.cls])
        glab = np.concatenate(labels)
        order = np.argsort(glab, kind="stable")  # groups by class, this part's before the other's
        return HBMStats(classes, glab[order], np.concatenate([self.n, other.n])[order],
                        np.concatenate([self.means, other.means])[order], scatter, T)


def _sufficient_stats(classes, cls, n, means, Xc, starts) -> HBMStats:
    """:class:`HBMStats` from the groups and the centred rows ``Xc`` (groups contiguous from
    ``starts``, sorted by class): one product over each class's rows where its groups of at least
    two spectra are equally large (then ``T_k = scatter_k / (n - 1)``), group by group otherwise."""
    d = Xc.shape[1]
    K = classes.size
    c_start = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
    g_stop = np.r_[c_start[1:], cls.size]
    r_start = starts[c_start]
    r_stop = np.r_[r_start[1:], Xc.shape[0]]
    scatter = np.zeros((K, d, d))
    T = np.zeros((K, d, d))
    for j, k in enumerate(cls[c_start]):
        nk = n[c_start[j]:g_stop[j]]
        multi = nk[nk >= 2]
        if multi.size == 0 or np.all(multi == multi[0]):
            Xk = Xc[r_start[j]:r_stop[j]]
            scatter[k] = Xk.T @ Xk  # a group of one spectrum adds nothing
            if multi.size:
                T[k] = scatter[k] * (1.0 / (multi[0] - 1.0))
        else:
            for g in range(c_start[j], g_stop[j]):
                if n[g] >= 2:
                    Xg = Xc[starts[g]:starts[g] + int(n[g])]
                    Cg = Xg.T @ Xg
                    scatter[k] += Cg
                    T[k] += Cg * (1.0 / (n[g] - 1.0))
    return HBMStats(classes, np.asarray(cls), np.asarray(n, dtype=np.float64), means, scatter, T)


class HBMClassifier:
    """HBM classifier following scikit-learn conventions.

    ``fit(X, y, groups)`` with ``groups`` the image id of each spectrum; ``predict_log_likelihood``
    gives per-class Student-t log densities, ``predict_proba`` their softmax (flat class priors),
    ``predict`` the most probable class.  Fitted attributes: ``classes_``, ``means_``,
    ``scales_`` (Student-t scale matrices), ``dofs_``, ``n_images_`` (images per class),
    ``mu0_``, ``S0_``, and ``stats_`` (:class:`HBMStats`, not saved with the model: what
    :meth:`from_stats` needs to refit on more images without revisiting these spectra).
    """

    def __init__(self, kappa0: float = 1.0, kappa1: float = 100.0, m_extra: float = 2.0,
                 compute_dtype: str = "float64"):
        self.kappa0 = kappa0
        self.kappa1 = kappa1
        self.m_extra = m_extra  # m = d + m_extra
        self.compute_dtype = compute_dtype

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
            plan: GroupPlan | None = None, stats_only: bool = False) -> HBMClassifier:
        """Fit on spectra ``X`` ``(n, d)``, labels ``y`` and image ids ``groups``; ``plan`` (a
        :class:`GroupPlan` of these ``y`` and ``groups``) saves recomputing the grouping when
        several models are fitted on the same labels.  ``stats_only`` stops at the sufficient
        statistics (:attr:`stats_`), without the posterior."""
        X = np.asarray(X)
        y = np.asarray(y).ravel()
        if X.ndim != 2 or X.shape[0] != y.size:
            raise OrbitmlInputError(f"X must be (n, d) with one label per row; got {X.shape} and {y.size}")
        if not np.isfinite(X).all():
            raise OrbitmlInputError("training spectra contain non-finite values")
        if plan is None:
            groups = np.zeros(y.size, dtype=np.int64) if groups is None else np.asarray(groups).ravel()
            if groups.size != y.size:
                raise OrbitmlInputError(f"{groups.size} image ids for {y.size} spectra")
            plan = GroupPlan(y, groups)
        elif plan.n_rows != y.size:
            raise OrbitmlInputError(f"the group plan is for {plan.n_rows} spectra, not {y.size}")
        self.classes_ = plan.classes
        with _single_thread_blas():  # small products: thread hand-offs cost more than they save
            self._fit_stats(*_group_stats(X, plan), stats_only=stats_only)
        return self

    def fit_minmax(self, X: np.ndarray, sub: np.ndarray, y: np.ndarray, plan: GroupPlan,
                   rows: np.ndarray | None = None, stats_only: bool = False) -> HBMClassifier:
        """``fit(minmax_rows(X[rows][:, sub]), y, plan=plan)`` (``rows`` default all); with numba,
        and those rows in the plan's order, the subset's scaled rows, group means and centred
        rows come from one compiled pass over ``X`` (the same values: the same arithmetic in the
        same order), without gathering the rows first."""
        from orbitml.crism import _kernels
        from orbitml.crism.preprocess import minmax_rows

        X = np.asarray(X)
        sub = np.asarray(sub, dtype=np.int64)
        rows = np.arange(X.shape[0] if X.ndim == 2 else 0) if rows is None else np.asarray(rows, dtype=np.int64)
        if not (_kernels.AVAILABLE and plan.order is None and X.ndim == 2 and rows.size == plan.n_rows
                and X.dtype in (np.float32, np.float64) and X.strides[1] == X.itemsize):
            return self.fit(minmax_rows(X[rows][:, sub]), y, plan=plan, stats_only=stats_only)
        if np.asarray(y).size != plan.n_rows:
            raise OrbitmlInputError(f"the group plan is for {plan.n_rows} spectra, not {np.asarray(y).size}")
        if rows.size and (rows.min() < 0 or rows.max() >= X.shape[0]):
            raise OrbitmlInputError(f"row indices outside the {X.shape[0]} spectra")
        Xc = np.empty((rows.size, sub.size))
        means = np.empty((plan.starts.size, sub.size))
        # rows far wider than the subset's span are streamed whole (see the kernel)
        touch = sub.size > 0 and 2 * int(sub.max() - sub.min() + 1) < X.shape[1]
        sink = np.zeros(1, dtype=X.dtype)
        if not _kernels._minmax_group_centre(X, rows, sub, plan.starts, plan.counts, Xc, means, touch, sink):
            raise OrbitmlInputError("training spectra contain non-finite values")
        self.classes_ = plan.classes
        with _single_thread_blas():
            self._fit_stats(plan.cls, plan.counts.astype(np.float64), means, Xc, plan.starts, stats_only)
        return self

    def _fit_stats(self, cls, n, means, Xc, starts, stats_only: bool = False) -> None:
        """The posterior from each (class, image) group's class position ``cls``, size ``n``,
        mean, and the centred rows ``Xc`` (groups contiguous from ``starts``, sorted by class)."""
        self.stats_ = stats = _sufficient_stats(self.classes_, cls, n, means, Xc, starts)
        if not stats_only:
            self._posterior(stats)

    def _posterior(self, st: HBMStats) -> None:
        """Posterior parameters from sufficient statistics (every class of ``st`` has a group)."""
        cls, n, means, d = st.cls, st.n, st.means, st.means.shape[1]
        self.classes_ = st.classes
        # classes are contiguous runs of groups
        c_start = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
        if c_start.size != st.classes.size:
            raise OrbitmlInputError("every class needs at least one (class, image) group")
        n_img = np.diff(np.r_[c_start, cls.size])
        # class-balanced prior: average over images, then over classes (images with >= 2 pixels for
        # S0): S0 = sum over classes with such images of T_k / (H * n_multi_k), T_k the sum of their
        # groups' C_g / (n_g - 1) (C_g a group's scatter), H the number of those classes
        mu0_k = np.add.reduceat(means, c_start, axis=0) / n_img[:, None]
        n_multi = np.add.reduceat((n >= 2).astype(np.int64), c_start)
        has_cov = n_multi > 0
        if not has_cov.any():
            raise OrbitmlInputError("every (class, image) group has a single spectrum; cannot estimate S0")
        self.mu0_ = mu0_k.mean(axis=0)
        S0 = np.zeros((d, d))
        H = int(has_cov.sum())
        for k in np.flatnonzero(has_cov):
            S0 += st.T[k] * (1.0 / (H * n_multi[k]))
        self.S0_ = S0
        m = d + self.m_extra
        psi = self.S0_ * (m - d - 1)
        kap_j = n * self.kappa1 / (n + self.kappa1)
        kap = np.add.reduceat(kap_j, c_start) + self.kappa0
        kbar = kap * self.kappa1 / (kap + self.kappa1)
        n_k = np.add.reduceat(n, c_start)
        dof = n_k - n_img + m - d + 1
        pooled = np.add.reduceat(kap_j[:, None] * means, c_start, axis=0)
        self.means_ = (pooled + self.kappa0 * self.mu0_) / kap[:, None]
        self.scales_ = (psi + st.scatter) * ((kbar + 1) / (kbar * dof))[:, None, None]
        self.dofs_ = dof
        self.n_images_ = n_img.astype(np.int64)
        self.n_samples_ = n_k.astype(np.int64)
        self.n_features_in_ = d
        self._prepare()

    @classmethod
    def from_stats(cls, stats: HBMStats, **params) -> HBMClassifier:
        """The model :meth:`fit` gives for the spectra these statistics summarise (for instance two
        parts' statistics merged with :meth:`HBMStats.merge`: the fit on their union)."""
        self = cls(**params)
        self.stats_ = stats
        self._posterior(stats)
        return self

    def _prepare(self) -> None:
        self.__dict__.pop("_plans", None)
        # single-threaded: small factorisations run faster, and the factors do not depend on the
        # BLAS thread count (the same bits after fit and after load on any machine)
        with _single_thread_blas():
            self._prepare_factors()

    def _prepare_factors(self) -> None:
        K, d = self.means_.shape
        try:  # all classes in one call
            L = np.linalg.cholesky(self.scales_)
        except np.linalg.LinAlgError:
            L = np.empty((K, d, d))
            eye = np.eye(d)
            for k in range(K):
                S = self.scales_[k]
                try:
                    L[k] = np.linalg.cholesky(S)
                except np.linalg.LinAlgError:  # numerically singular: add a tiny ridge
                    L[k] = np.linalg.cholesky(S + eye * (1e-10 * np.trace(S) / d + 1e-300))
        self._chol_inv = np.empty((K, d, d))
        for k in range(K):  # LAPACK's triangular inverse (exact zeros above the diagonal)
            inv, info = dtrtri(L[k], lower=1)
            if info != 0:  # pragma: no cover - a Cholesky factor has a positive diagonal
                raise np.linalg.LinAlgError(f"triangular inverse failed (info {info})")
            self._chol_inv[k] = inv
        self._logdet_half = np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)

    def _check(self, X):
        if not hasattr(self, "means_"):
            raise RuntimeError("HBMClassifier is not fitted")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise OrbitmlInputError(f"expected spectra with {self.n_features_in_} bands, got shape {X.shape}")
        return X

    def plan(self, dtype=None) -> StudentTPlan:
        """The Student-t evaluation arrays for ``dtype`` (default ``compute_dtype``), cached."""
        dt = np.dtype(dtype or self.compute_dtype)
        cache = self.__dict__.setdefault("_plans", {})
        if dt not in cache:
            cache[dt] = StudentTPlan(self.means_, self._chol_inv, self._logdet_half, self.dofs_, dt)
        return cache[dt]

    def predict_log_likelihood(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        X = self._check(X)
        return student_t_logpdf(X, None, None, None, None, threads=threads, plan=self.plan())

    def predict_proba(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        return softmax_rows(self.predict_log_likelihood(X, threads=threads))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_log_likelihood(X), axis=1)]

    # --- persistence (plain arrays, no pickle) ---
    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {f"{prefix}classes": self.classes_, f"{prefix}means": self.means_, f"{prefix}scales": self.scales_,
                f"{prefix}dofs": self.dofs_, f"{prefix}n_images": self.n_images_,
                f"{prefix}n_samples": self.n_samples_, f"{prefix}mu0": self.mu0_, f"{prefix}S0": self.S0_}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "", **params) -> HBMClassifier:
        self = cls(**params)
        self.classes_ = np.asarray(arrays[f"{prefix}classes"])
        self.means_ = np.asarray(arrays[f"{prefix}means"], dtype=np.float64)
        self.scales_ = np.asarray(arrays[f"{prefix}scales"], dtype=np.float64)
        self.dofs_ = np.asarray(arrays[f"{prefix}dofs"], dtype=np.float64)
        self.n_images_ = np.asarray(arrays[f"{prefix}n_images"])
        self.n_samples_ = np.asarray(arrays[f"{prefix}n_samples"])
        self.mu0_ = np.asarray(arrays[f"{prefix}mu0"], dtype=np.float64)
        self.S0_ = np.asarray(arrays[f"{prefix}S0"], dtype=np.float64)
        self.n_features_in_ = self.means_.shape[1]
        self._prepare()
        return self
