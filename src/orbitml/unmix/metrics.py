"""Unmixing metrics following the HySUPP protocol (Rasti et al. 2024).

* SAD: spectral angle in **degrees** between each reference endmember and its match, the matching
  found with the Hungarian algorithm (scipy's ``linear_sum_assignment``) on the angle matrix;
* abundance RMSE: ``sqrt(mean((A - A_hat)^2))`` over all pixels and endmembers, reported
  **x100** as in HySUPP's tables (``scale=100``; pass ``scale=1`` for the raw value);
* SRE: signal-to-reconstruction error of the abundances in dB,
  ``10 log10(||A||^2 / ||A - A_hat||^2)``.

Endmembers are rows ``(p, n_bands)``; abundances are ``(n_pixels, p)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from orbitml.errors import OrbitmlInputError, count

__all__ = ["sad_matrix", "match_endmembers", "sad", "SADResult", "abundance_rmse", "sre_db"]


def sad_matrix(E_ref: np.ndarray, E_est: np.ndarray) -> np.ndarray:
    """Spectral angles in degrees between every reference row and every estimated row."""
    E_ref = np.atleast_2d(np.asarray(E_ref, dtype=np.float64))
    E_est = np.atleast_2d(np.asarray(E_est, dtype=np.float64))
    if E_ref.shape[1] != E_est.shape[1]:
        raise OrbitmlInputError(f"endmembers have {E_ref.shape[1]} and {count(E_est.shape[1], 'band')}")
    nr = np.linalg.norm(E_ref, axis=1)
    ne = np.linalg.norm(E_est, axis=1)
    if (nr == 0).any() or (ne == 0).any():
        raise OrbitmlInputError("an endmember is all zero: its spectral angle is undefined")
    cos = (E_ref @ E_est.T) / np.outer(nr, ne)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def match_endmembers(E_ref: np.ndarray, E_est: np.ndarray) -> np.ndarray:
    """``perm`` such that ``E_est[perm[i]]`` is matched to ``E_ref[i]`` (-1 where unmatched)."""
    S = sad_matrix(E_ref, E_est)
    r, c = linear_sum_assignment(S)
    perm = np.full(S.shape[0], -1, dtype=np.int64)
    perm[r] = c
    return perm


@dataclass
class SADResult:
    mean_deg: float
    angles_deg: np.ndarray  # per reference endmember (NaN where unmatched)
    perm: np.ndarray


def sad(E_ref: np.ndarray, E_est: np.ndarray) -> SADResult:
    """Mean SAD (degrees) over the Hungarian-matched pairs, the per-endmember angles and the matching."""
    S = sad_matrix(E_ref, E_est)
    perm = match_endmembers(E_ref, E_est)
    ang = np.array([S[i, j] if j >= 0 else np.nan for i, j in enumerate(perm)])
    return SADResult(float(np.nanmean(ang)), ang, perm)


def _check_ab(A_ref: np.ndarray, A_est: np.ndarray, perm: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    A_ref = np.asarray(A_ref, dtype=np.float64)
    A_est = np.asarray(A_est, dtype=np.float64)
    if perm is not None:
        A_est = A_est[:, np.asarray(perm)]
    if A_ref.shape != A_est.shape:
        raise OrbitmlInputError(f"abundances have shapes {A_ref.shape} and {A_est.shape}")
    if not (np.isfinite(A_ref).all() and np.isfinite(A_est).all()):
        raise OrbitmlInputError("abundances hold NaN or inf: compare valid pixels only")
    return A_ref, A_est


def abundance_rmse(A_ref: np.ndarray, A_est: np.ndarray, perm: np.ndarray | None = None,
                   scale: float = 100.0) -> float:
    """Abundance RMSE over all pixels and endmembers, times ``scale`` (HySUPP reports x100).

    ``perm`` (from :func:`match_endmembers`) reorders the estimated columns first.
    """
    A_ref, A_est = _check_ab(A_ref, A_est, perm)
    return float(scale * np.sqrt(np.mean((A_ref - A_est) ** 2)))


def sre_db(A_ref: np.ndarray, A_est: np.ndarray, perm: np.ndarray | None = None) -> float:
    """Signal-to-reconstruction error of the abundances in dB (+inf for an exact match)."""
    A_ref, A_est = _check_ab(A_ref, A_est, perm)
    err = float(np.sum((A_ref - A_est) ** 2))
    sig = float(np.sum(A_ref**2))
    return float("inf") if err == 0 else float(10.0 * np.log10(sig / err))
