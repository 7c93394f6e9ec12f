"""Demo section: a simulated mission whose cosmic-ray flux follows a solar-cycle-like sinusoid.

Frames (sky, stars, a hot column, cosmic rays at the day's rate) are simulated over "mission days",
hits are detected (L.A.Cosmic; in the full demo also the shipped U-Net), the mask
components are categorised with the hit classifier (spot / track / worm vs star / hot column /
bleed), and the recovered cosmic-ray rate is plotted against the truth.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from orbitml.cosmic.detect import detect_lacosmic, detect_unet
from orbitml.cosmic.evaluate import detection_at_fpr, hit_metrics, mask_rates
from orbitml.cosmic.ingest import Frame

GAIN = 2.0
PIXEL_UM = 15.0
EXPOSURE_S = 150.0


def _frame(image_e: np.ndarray, rn: float, day: float) -> Frame:
    data = (image_e / GAIN).astype(np.float32)
    return Frame(path=f"sim_day{day:07.1f}", data=data, gain=GAIN, read_noise=rn, exptime=EXPOSURE_S,
                 time=None, pixel_size_um=PIXEL_UM, instrument="generic", saturation_adu=1.5e5 / GAIN,
                 bad=np.zeros(data.shape, bool), instrument_label="simulated")


def _categorise(sci_e, clean_e, mask, clf):
    """Number of cosmic-ray components (classifier if available, else every component)."""
    if clf is None:
        from scipy import ndimage as ndi

        return int(ndi.label(mask, structure=np.ones((3, 3)))[1]), {}
    from orbitml.cosmic.features import hit_table

    table = hit_table(sci_e, clean_e, mask)
    if table.empty:
        return 0, {}
    cls = clf.predict(table)
    counts = pd.Series(cls).value_counts().to_dict()
    return int(sum(counts.get(c, 0) for c in ("spot", "track", "worm"))), counts


def simulate_mission(n_frames: int, shape, seed: int, base_rate: float = 3.0, amplitude: float = 0.4,
                     period_days: float = 800.0, span_days: float = 1200.0):
    """Yield (day, true rate, frame Frame, injection, non-CR truth) for a sinusoidal flux."""
    from orbitml.simulate.ccd import inject_cosmic_rays, simulate_frame

    rng = np.random.default_rng(seed)
    days = np.linspace(0.0, span_days, n_frames)
    for day in days:
        rate = base_rate * (1.0 + amplitude * np.sin(2 * np.pi * day / period_days))
        rn = 5.0
        base, truth = simulate_frame(shape, sky_e=float(rng.uniform(80, 300)), read_noise_e=rn,
                                     n_stars=int(rng.integers(3, 10)), hot_columns=1,
                                     seed=int(rng.integers(2**31)))
        inj = inject_cosmic_rays(base, rate_per_cm2_s=rate, exposure_s=EXPOSURE_S, pixel_size_um=PIXEL_UM,
                                 seed=int(rng.integers(2**31)))
        yield float(day), float(rate), _frame(inj.image, rn, day), inj, truth


def section(ctx) -> None:
    import matplotlib.pyplot as plt

    t0 = time.time()
    out = ctx.folder("cosmic")
    quick = ctx.quick
    n_frames, shape = (12, (160, 160)) if quick else (36, (256, 256))
    try:
        from orbitml.cosmic.categorise import default_classifier

        clf = default_classifier(cache_dir=out / "cache", random_state=ctx.seed)
    except ImportError:
        clf = None
    unet = None
    if not quick:  # the shipped default model: nothing to train
        from orbitml.cosmic.shipped import DEFAULT, shipped_models
        from orbitml.nn.cosmic_unet import load_model
        from orbitml.nn.weights import simulated_notice

        unet = load_model(shipped_models()[DEFAULT])
    area_cm2 = shape[0] * shape[1] * (PIXEL_UM * 1e-4) ** 2
    rows, pix = [], {"lacosmic": [], "unet": []}
    example = None
    for day, rate, frame, inj, truth in simulate_mission(n_frames, shape, ctx.seed):
        det = detect_lacosmic(frame)
        n_cr, counts = _categorise(frame.data_e, det.clean * GAIN, det.mask, clf)
        hm = hit_metrics(det.mask, inj.hit_id)
        row = {"day": day, "true_rate": rate, "injected": len(inj.hits),
               "injected_visible": hm["n_true_hits"], "components": det.n_regions, "cosmic": n_cr,
               "non_cosmic": det.n_regions - n_cr, "recall": hm["recall"], "precision": hm["precision"]}
        pix["lacosmic"].append(mask_rates(det.mask, inj.mask))
        if unet is not None:
            d2 = detect_unet(frame, *unet)
            pix["unet"].append(detection_at_fpr(d2.prob, inj.mask, (1e-3,))[1e-3]["tpr"])
            row["unet_cosmic"] = _categorise(frame.data_e, d2.clean * GAIN, d2.mask, clf)[0]
        rows.append(row)
        if example is None:
            example = (frame, det, inj, truth)
    df = pd.DataFrame(rows)
    df["recovered_rate"] = df["cosmic"] / (area_cm2 * EXPOSURE_S)
    df["recovered_err"] = np.sqrt(np.maximum(df["cosmic"], 1)) / (area_cm2 * EXPOSURE_S)
    df["injected_rate"] = df["injected_visible"] / (area_cm2 * EXPOSURE_S)
    df.to_csv(out / "mission_rates.csv", index=False)

    fig, ax = plt.subplots(figsize=(7, 4))
    dd = np.linspace(df["day"].min(), df["day"].max(), 300)
    ax.plot(dd, 3.0 * (1 + 0.4 * np.sin(2 * np.pi * dd / 800.0)), "k-", lw=1, label="true flux")
    ax.plot(df["day"], df["injected_rate"], "s", mfc="none", color="0.4", label="injected (this frame)")
    ax.errorbar(df["day"], df["recovered_rate"], yerr=df["recovered_err"], fmt="o", color="C3", ms=4,
                label="recovered: L.A.Cosmic + classifier")
    if "unet_cosmic" in df:
        ax.plot(df["day"], df["unet_cosmic"] / (area_cm2 * EXPOSURE_S), "^", color="C0", ms=4,
                label="recovered: U-Net + classifier")
    ax.set_xlabel("mission day")
    ax.set_ylabel("hits / cm² / s")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()

    frame, det, inj, _ = example
    fig2, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    lo, hi = np.percentile(frame.data, [5, 99.5])
    axes[0].imshow(frame.data, cmap="gray", vmin=lo, vmax=hi, origin="lower")
    axes[0].set_title("simulated frame (ADU)")
    axes[1].imshow(inj.mask, cmap="Reds", origin="lower")
    axes[1].set_title("true hit pixels")
    axes[2].imshow(det.mask, cmap="Blues", origin="lower")
    axes[2].set_title("L.A.Cosmic mask")
    for a in axes:
        a.set_axis_off()
    fig2.tight_layout()

    fpr, tpr = np.mean(pix["lacosmic"], axis=0)
    corr = float(np.corrcoef(df["true_rate"], df["recovered_rate"])[0, 1])
    ratio = float(df["recovered_rate"].sum() / df["injected_rate"].sum())
    summary = [{"detector": "L.A.Cosmic (sigclip 4.5)", "pixel FPR": fpr, "pixel detection rate": tpr,
                "hit recall": float(df["recall"].mean()), "region precision": float(df["precision"].mean())}]
    if pix["unet"]:
        summary.append({"detector": f"U-Net (shipped {DEFAULT}; {simulated_notice(unet[1])}), pixel rate at "
                                    "0.1% FPR", "pixel FPR": 1e-3,
                        "pixel detection rate": float(np.mean(pix["unet"])), "hit recall": float("nan"),
                        "region precision": float("nan")})
    ctx.report.add_section(
        "Cosmic rays: detection and rates over a simulated mission",
        f"{n_frames} frames of {shape[0]}x{shape[1]} pixels ({PIXEL_UM:g} um, {EXPOSURE_S:g} s) over "
        f"{df['day'].max():.0f} mission days; the galactic cosmic-ray flux follows 3 hits/cm²/s x "
        f"(1 + 0.4 sin(2 pi day / 800)).  Each frame has sky, stars and a hot column; hits are detected with "
        f"L.A.Cosmic (astroscrappy) and each mask component is classified "
        f"({'random-forest hit classifier' if clf is not None else 'connected components only'}).  "
        f"Recovered / injected hits overall: {ratio:.2f}; correlation of the recovered rate with the true "
        f"flux: {corr:.2f}.  (Hits below the detection limit, and hits that merge, lower the ratio.)  "
        f"Section time {time.time() - t0:.0f} s.",
        figures=[("Recovered cosmic-ray rate against the true flux", fig),
                 ("One frame: true hits and the L.A.Cosmic mask", fig2)],
        tables=[("Detection quality (means over frames)", summary),
                ("First frames", df.head(6)[["day", "true_rate", "injected", "components", "cosmic",
                                             "non_cosmic", "recovered_rate"]].to_dict("records"))])
