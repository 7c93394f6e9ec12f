"""Demo section: CTX -> CRISM enhanced visible colour on simulated pairs.

Simulated CTX / CRISM / DEM products (shared geological units, terrain lit from the west, a small
misregistration) are built into pairs (reprojection, phase-correlation alignment), a small U-Net is
trained on image-wise normalised patches, the held-out pair is predicted with Gaussian-weighted
tiles at s = 2 and compared with the truth and with the pixel-wise albedo baseline.
"""

from __future__ import annotations

import time

import yaml


def section(ctx) -> None:
    from orbitml.pan2spec.evaluate import evaluate_pairs
    from orbitml.pan2spec.pairs import load_pair
    from orbitml.pan2spec.simulated import simulate_dataset
    from orbitml.pan2spec.train import load_train_manifest, train

    t0 = time.time()
    out = ctx.folder("pan2spec")
    size, epochs, per_epoch = (128, 3, 16) if ctx.quick else (160, 8, 32)
    res = simulate_dataset(out, n_pairs=4, size=size, seed=ctx.seed, epochs=epochs, patch_size=64, overwrite=True)
    man_path = res["manifest"]
    man = yaml.safe_load(man_path.read_text())
    man.update(progress=False, device="cpu", epoch_size=per_epoch, lr=3e-3)
    man_path.write_text(yaml.safe_dump(man, sort_keys=False))
    card = train(load_train_manifest(man_path))
    model = out / "model" / "model.safetensors"
    test = [str(out / p) for p in man["test_pairs"]]
    ev = evaluate_pairs(model, test, out / "evaluation", stride_div=2)
    shifts = []
    for p in res["pairs"]:
        q = load_pair(out / p).stats["quality"]
        shifts.append({"pair": p, "global shift dy (px)": q["global_shift_px"][0],
                       "global shift dx (px)": q["global_shift_px"][1], "residual (px)": q["residual_shift_px"],
                       "windows used": q["n_windows_used"]})
    rows = [{"model": k, **v} for k, v in ev["mean"].items()]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from orbitml.pan2spec.evaluate import _figure, pair_arrays, predict_pair, truth_units
    from orbitml.pan2spec.predict import load_model

    m = load_model(model)
    pair = load_pair(test[0])
    x, y, valid = pair_arrays(pair, False)
    pred = predict_pair(m, x, 2)
    fig = _figure(x, truth_units(m.normaliser, y, valid, pair), pred, None, valid & np.isfinite(pred).all(0),
                  f"{pair.folder.name} (held out)")
    log = card["training"]
    hist_fig = None
    import csv

    with open(out / "model" / "training_log.csv") as fh:
        hist = list(csv.DictReader(fh))
    if hist:
        hist_fig, ax = plt.subplots(figsize=(4.5, 3))
        ax.plot([int(r["epoch"]) for r in hist], [float(r.get("train_loss") or "nan") for r in hist], "o-",
                label="train loss")
        ax.plot([int(r["epoch"]) for r in hist], [float(r.get("val_loss") or "nan") for r in hist], "s-",
                label="validation loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("masked MSE (z units)")
        ax.legend(fontsize=7)
        fig_list = [("Held-out pair: CTX, CRISM EVC truth, prediction, error", fig),
                    ("Training curve", hist_fig)]
    else:
        fig_list = [("Held-out pair: CTX, CRISM EVC truth, prediction, error", fig)]
    net_rmse, base_rmse = ev["mean"]["network"]["rmse"], ev["mean"]["albedo baseline"]["rmse"]
    verdict = "morphology adds to albedo here" if net_rmse < base_rmse else (
        "not better: in this simulation shading ties colour to brightness, and a small model trained this briefly "
        "has not yet learnt the units from their morphology; 25 epochs of 32 patches reached the baseline on a "
        "held-out pair, see docs/pan2spec.md")
    ctx.report.add_section(
        "pan2spec: CRISM colour from CTX (simulated pairs)",
        f"Four simulated {size} x {size} px CTX images (6 m/px, Mars equirectangular) with CRISM products at "
        f"18 m/px (noise, column stripes, ragged nodata edges, a 1-3 px misregistration with a gradient) and a DEM "
        f"were built into pairs: bands 592/533/442 nm chosen from the product's wavelength table, reprojected onto "
        f"the CTX grid, aligned by phase correlation (global, then local windows) and cut to the CRISM footprint. "
        f"A small U-Net ({card['model']['encoder']}, depth {card['model']['encoder_depth']}) was trained for "
        f"{log['epochs']} epochs of {log['epoch_size']} patches of 64 px with image-wise normalisation "
        f"({log['seconds']:.0f} s) and the held-out pair predicted with Gaussian-weighted tiles at s = 2.  "
        f"Metrics are in {ev['units']}.  The pixel-wise albedo baseline maps each CTX value to each band by a cubic "
        f"fitted on the training pairs; here the network's RMSE is {ev['mean']['network']['rmse']:.3f} against the "
        f"baseline's {ev['mean']['albedo baseline']['rmse']:.3f} "
        f"({verdict}).  The paper's full-image EVC figures (Unet + EfficientNet-B0 on real "
        f"pairs: RMSE 0.43-0.55, cosine 0.74-0.84, Pearson 0.82-0.85) are "
        f"the reference for real data.  NOTE: {ev['notice']}.  Section time {time.time() - t0:.0f} s.",
        figures=fig_list,
        tables=[("Held-out pair, mean over images", rows), ("Pair alignment", shifts)])
