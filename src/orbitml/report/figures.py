"""Standard figures: false-colour composites, spectra, class maps.

matplotlib is used with the non-interactive Agg backend; every function returns a Figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402


def stretch_3sigma(band: np.ndarray) -> np.ndarray:
    """Linear stretch of one band to [0, 1] over mean +- 3 standard deviations of its finite values.

    Non-finite pixels stay NaN.
    """
    band = np.asarray(band, dtype=np.float64)
    ok = np.isfinite(band)
    out = np.full(band.shape, np.nan)
    if not ok.any():
        return out
    mu, sd = band[ok].mean(), band[ok].std()
    lo, hi = mu - 3 * sd, mu + 3 * sd
    if hi <= lo:
        out[ok] = 0.5
        return out
    out[ok] = np.clip((band[ok] - lo) / (hi - lo), 0.0, 1.0)
    return out


def rgb_composite(cube: np.ndarray, bands: Sequence[int]) -> np.ndarray:
    """(y, x, 3) float image in [0, 1] from three band indices of a (band, y, x) cube; NaN -> black."""
    rgb = np.stack([stretch_3sigma(cube[b]) for b in bands], axis=-1)
    return np.nan_to_num(rgb, nan=0.0)


def false_colour_figure(cube: np.ndarray, bands: Sequence[int], title: str = "", wavelength=None):
    """False-colour composite of three bands with a 3-sigma stretch."""
    fig, ax = plt.subplots(figsize=(5, 5 * cube.shape[1] / max(cube.shape[2], 1) + 0.4))
    ax.imshow(rgb_composite(np.asarray(cube), bands), interpolation="nearest")
    if wavelength is not None:
        wl = np.asarray(wavelength)
        ax.set_title(f"{title}\nR={wl[bands[0]]:.0f} G={wl[bands[1]]:.0f} B={wl[bands[2]]:.0f} nm".strip())
    else:
        ax.set_title(title)
    ax.set_axis_off()
    fig.tight_layout()
    return fig


def spectra_figure(
    wavelength: np.ndarray,
    spectra: np.ndarray,
    labels: Sequence[str] | None = None,
    title: str = "",
    ylabel: str = "reflectance",
    offset: float = 0.0,
):
    """Line plot of spectra (rows) against wavelength in nm, optionally offset for clarity."""
    spectra = np.atleast_2d(np.asarray(spectra, dtype=float))
    n = len(spectra)
    # enough distinct colours for every curve (tab10 repeats after 10, tab20 after 20, then dashes)
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    styles = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(7.5 if labels is not None else 7, 4))
    for i, s in enumerate(spectra):
        ax.plot(np.asarray(wavelength) / 1000.0, s + i * offset, lw=1.2, color=cmap(i % cmap.N),
                ls=styles[(i // cmap.N) % len(styles)], label=None if labels is None else str(labels[i]))
    ax.set_xlabel("wavelength (µm)")
    ax.set_ylabel(ylabel + (" (offset)" if offset else ""))
    ax.set_title(title)
    if labels is not None:  # outside the axes: a legend must never cover absorption features
        ax.legend(fontsize=7, ncol=2 if n > 12 else 1, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0.0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def class_map_figure(labels: np.ndarray, names: Sequence[str], title: str = "", nodata: int = -1,
                     colours: Sequence[Sequence[int]] | None = None):
    """Class map with a legend; pixels equal to ``nodata`` are shown white.

    ``colours``: RGB 0-255 per class (default :func:`orbitml.io.classmap.class_colours` of the names, the
    same colours the class-map products carry).
    """
    from orbitml.io.classmap import class_colours

    labels = np.asarray(labels)
    k = len(names)
    colours = [tuple(v / 255 for v in c[:3]) for c in (colours if colours is not None else class_colours(list(names)))]
    cmap = ListedColormap(colours).with_extremes(bad="white")
    shown = np.ma.masked_where(labels == nodata, labels)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    ax.imshow(shown, cmap=cmap, norm=BoundaryNorm(np.arange(-0.5, k + 0.5), k), interpolation="nearest")
    present = sorted(set(np.unique(labels[labels != nodata]).tolist()))
    ax.legend(handles=[Patch(color=colours[i], label=str(names[i])) for i in present if 0 <= i < k],
              loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
    ax.set_title(title)
    ax.set_axis_off()
    fig.tight_layout()
    return fig
