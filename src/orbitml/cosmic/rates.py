"""Cosmic-ray hit rates from a catalogue: per frame, binned in time, with Poisson uncertainties.

The rate of a frame is ``n / (A t)`` hits per cm^2 per s, with ``n`` the hits of the chosen classes,
``A`` the area of its valid pixels (``n_valid_pixels x pixel size^2``) and ``t`` its exposure time.
Over a time bin the frames are pooled: ``sum n / sum(A t)`` (the maximum-likelihood rate of a
constant flux).  Uncertainties: ``sqrt(n) / (A t)`` and the one-sided 1-sigma Poisson limits of
Gehrels (1986, ApJ 303, 336, eqs. 9 and 14 with S = 1), which stay meaningful for n = 0.  A frame
without exposure time or observation time is left out of the rate and named in the notes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from orbitml.cosmic.categorise import CLASSES, COSMIC_CLASSES
from orbitml.errors import OrbitmlInputError


def gehrels_limits(n) -> tuple[np.ndarray, np.ndarray]:
    """1-sigma lower and upper confidence limits on a Poisson mean given ``n`` counts (Gehrels 1986)."""
    n = np.asarray(n, dtype=np.float64)
    upper = n + np.sqrt(n + 0.75) + 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = np.where(n > 0, n * (1.0 - 1.0 / (9.0 * n) - 1.0 / (3.0 * np.sqrt(n))) ** 3, 0.0)
    return np.maximum(lower, 0.0), upper


def parse_classes(text: str | Sequence[str] | None) -> tuple[str, ...]:
    if text is None:
        return COSMIC_CLASSES
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    bad = [s for s in items if s not in CLASSES]
    if bad or not items:
        raise OrbitmlInputError(f"unknown hit class(es) {bad or text!r}; choose from {', '.join(CLASSES)}")
    return tuple(items)


def _with_rates(df: pd.DataFrame, n_col: str, exposure_col: str) -> pd.DataFrame:
    n, ex = df[n_col].to_numpy(float), df[exposure_col].to_numpy(float)
    lo, hi = gehrels_limits(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        df["rate"] = n / ex
        df["rate_err"] = np.sqrt(n) / ex
        df["rate_lo"] = lo / ex
        df["rate_hi"] = hi / ex
    return df


def frame_rates(hits: pd.DataFrame, frames: pd.DataFrame,
                classes: Sequence[str] = COSMIC_CLASSES) -> tuple[pd.DataFrame, list[str]]:
    """Per-frame counts and rates (hits/cm^2/s) of ``classes``; returns (table, notes)."""
    sel = hits[hits["class"].isin(list(classes))]
    counts = sel.groupby("frame").size()
    energy = sel.groupby("frame")["energy_e"].median() if "energy_e" in sel else None
    out = frames[["frame", "time", "exptime_s", "area_cm2", "n_valid_pixels"]].copy()
    out["n_hits"] = out["frame"].map(counts).fillna(0).astype(np.int64)
    if energy is not None:
        out["median_energy_e"] = out["frame"].map(energy)
    out["exposure_cm2_s"] = out["area_cm2"].astype(float) * out["exptime_s"].astype(float)
    notes = []
    bad = ~(out["exposure_cm2_s"] > 0)
    for f in out.loc[bad, "frame"]:
        notes.append(f"{f}: no exposure time or no valid pixels; left out of the rates")
    out = _with_rates(out[~bad].copy(), "n_hits", "exposure_cm2_s")
    out["time"] = pd.to_datetime(out["time"], errors="coerce")
    return out.sort_values(["time", "frame"], na_position="last").reset_index(drop=True), notes


def binned_rates(per_frame: pd.DataFrame, bin: str) -> pd.DataFrame:
    """Pool frames into time bins (a pandas frequency such as ``1d``, ``6h``, ``30min``)."""
    df = per_frame.dropna(subset=["time"])
    if df.empty:
        return pd.DataFrame(columns=["time_start", "time", "n_frames", "n_hits", "exposure_cm2_s",
                                     "rate", "rate_err", "rate_lo", "rate_hi"])
    bin = re.sub(r"^(\d*)\s*(d|day|days)$", r"\1D", bin.strip(), flags=re.IGNORECASE)
    try:
        pd.tseries.frequencies.to_offset(bin)
    except ValueError:
        raise OrbitmlInputError(f"bad time bin {bin!r}; use e.g. 1d, 6h, 30min") from None
    tsec = (df["time"] - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy()
    df = df.assign(w=df["exposure_cm2_s"], wt=df["exposure_cm2_s"] * tsec)
    g = df.groupby(pd.Grouper(key="time", freq=bin))
    size = g.size()
    keep = size.to_numpy() > 0
    w = g["w"].sum().to_numpy()[keep]
    out = pd.DataFrame({
        "time_start": size.index[keep],
        # exposure-weighted mean time of the frames in the bin
        "time": pd.to_datetime(np.round(g["wt"].sum().to_numpy()[keep] / w, 3), unit="s"),
        "n_frames": size.to_numpy()[keep], "n_hits": g["n_hits"].sum().to_numpy()[keep],
        "exposure_cm2_s": w,
    })
    return _with_rates(out, "n_hits", "exposure_cm2_s")


def constancy_chi2(table: pd.DataFrame) -> dict[str, float]:
    """Chi-square of the rows against one pooled constant rate (Poisson expected counts)."""
    n = table["n_hits"].to_numpy(float)
    ex = table["exposure_cm2_s"].to_numpy(float)
    if n.size < 2 or ex.sum() <= 0:
        return {"pooled_rate": float(n.sum() / ex.sum()) if ex.sum() > 0 else float("nan"),
                "chi2": float("nan"), "dof": 0, "p_value": float("nan")}
    from scipy.stats import chi2

    rate = n.sum() / ex.sum()
    mu = rate * ex
    c2 = float(np.sum((n - mu) ** 2 / np.maximum(mu, 1e-12)))
    return {"pooled_rate": float(rate), "pooled_err": float(np.sqrt(n.sum()) / ex.sum()), "chi2": c2,
            "dof": int(n.size - 1), "p_value": float(chi2.sf(c2, n.size - 1))}


def plot_rates(per_frame: pd.DataFrame, binned: pd.DataFrame | None, path: str | os.PathLike,
               title: str = "cosmic-ray hit rate"):
    """PNG of the rate time series (frames as points, bins as steps), with 1-sigma Poisson bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    df = per_frame.dropna(subset=["time"])
    x = df["time"] if len(df) else np.arange(len(per_frame))
    d = df if len(df) else per_frame
    ax.errorbar(x, d["rate"], yerr=[d["rate"] - d["rate_lo"], d["rate_hi"] - d["rate"]], fmt="o", ms=3,
                lw=0.8, alpha=0.7, label="frames")
    if binned is not None and len(binned):
        ax.errorbar(binned["time"], binned["rate"],
                    yerr=[binned["rate"] - binned["rate_lo"], binned["rate_hi"] - binned["rate"]],
                    fmt="s", color="C3", ms=5, capsize=3, label="time bins")
    ax.set_ylabel("hits cm$^{-2}$ s$^{-1}$")
    ax.set_xlabel("time (UTC)" if len(df) else "frame")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(Path(path), dpi=110)
    plt.close(fig)


def hit_statistics(hits: pd.DataFrame, classes: Sequence[str] = COSMIC_CLASSES) -> pd.DataFrame:
    """Per class: count, energy (e-) and length (px) quartiles, median width and curvature."""
    rows = []
    for c in classes:
        h = hits[hits["class"] == c]
        row = {"class": c, "n": len(h)}
        for col in ("energy_e", "length_px"):
            q = h[col].quantile([0.25, 0.5, 0.75]) if len(h) else pd.Series([np.nan] * 3)
            row.update({f"{col}_q25": float(q.iloc[0]), f"{col}_median": float(q.iloc[1]),
                        f"{col}_q75": float(q.iloc[2])})
        for col in ("width_px", "curvature"):
            row[f"{col}_median"] = float(h[col].median()) if len(h) and col in h else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def plot_hit_distributions(hits: pd.DataFrame, classes: Sequence[str], path: str | os.PathLike) -> None:
    """PNG: histograms of hit energy (e-, log bins) and length (px) per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    e = hits.loc[hits["class"].isin(list(classes)), "energy_e"].to_numpy(float)
    e = e[e > 0]
    ebins = np.logspace(np.log10(max(e.min(), 1.0)), np.log10(max(e.max(), 10.0)), 40) if e.size else 10
    for c in classes:
        h = hits[hits["class"] == c]
        if len(h):
            a1.hist(h["energy_e"].clip(lower=1.0), bins=ebins, histtype="step", lw=1.4, label=f"{c} ({len(h)})")
            a2.hist(h["length_px"], bins=np.arange(0, max(h["length_px"].max(), 2) + 2), histtype="step",
                    lw=1.4, label=c)
    a1.set_xscale("log")
    a1.set_xlabel("hit energy (e$^-$)")
    a1.set_ylabel("hits")
    a2.set_xlabel("length along the major axis (px)")
    a2.set_yscale("log")
    for a in (a1, a2):
        a.grid(alpha=0.3)
    a1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(Path(path), dpi=110)
    plt.close(fig)
