"""Demo section: train a small minmap model on simulated libraries and map a simulated scene with known truth.

Everything is simulated (stated in the section): per-class endmember bundles on a fine grid, a
PRISMA-like scene from other bundle members with illumination and albedo variability and 30 dB noise.
The network is compared with the FCLS class-mean baseline on the same scene.
"""

from __future__ import annotations

import time

import yaml

__all__ = ["section"]


def section(ctx) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    from orbitml.io import open_scene
    from orbitml.minmap.evaluate import compare, fcls_baseline, read_truth, summary_rows
    from orbitml.minmap.manifest import load
    from orbitml.minmap.mapping import map_scene
    from orbitml.minmap.model import model_from_weights
    from orbitml.minmap.outputs import class_figure
    from orbitml.minmap.run import write_simulation
    from orbitml.minmap.train import train
    from orbitml.nn.weights import simulated_notice

    t0 = time.perf_counter()
    out = ctx.folder("minmap")
    size = 32 if ctx.quick else 48
    paths = write_simulation(out / "example", shape=(size, size), seed=ctx.seed + 7, quick=True)
    man_path = paths["manifest"]
    man = yaml.safe_load(man_path.read_text())
    if ctx.quick:
        net, n_train, epochs = {"patch": 11, "width": 16, "c3": 4, "head": 16}, 800, 4
    else:
        net, n_train, epochs = {"patch": 11, "width": 24, "c3": 4, "head": 24}, 1200, 5
    man.update(network=net, augment={"n_per_class": 200}, patches={"n_train": n_train, "n_val": 200},
               training={"epochs": epochs, "batch_size": 32, "lr": 0.006, "threads": 2})
    man_path.write_text(yaml.safe_dump(man, sort_keys=False))
    model_dir = train(load(man_path), man_path, log=lambda *_: None)
    model, card = model_from_weights(model_dir)
    scene = open_scene(paths["scene"])
    names = list(card["classes"])
    res = map_scene(model, card, scene)
    f_cls, f_ab = fcls_baseline(model, card, scene, res.valid)
    truth_cls, truth_ab = read_truth([str(paths["truth_classes"]), str(paths["truth_abundances"])], scene, names)
    metrics = compare(res.classes, res.abundances, f_cls, f_ab, truth_cls, truth_ab, res.valid, names)
    notice = simulated_notice(card)
    figs = [("truth", class_figure(truth_cls.astype(np.uint8), names, "truth")),
            ("network", class_figure(res.classes, names, "network (3-D CNN)", notice)),
            ("FCLS class-mean", class_figure(f_cls, names, "FCLS class-mean baseline"))]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    k = 0
    for ax, img, title in zip(axes, (truth_ab[k], res.abundances[k], f_ab[k]), ("truth", "network", "FCLS"),
                              strict=True):
        im = ax.imshow(img, vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"{names[k]} abundance: {title}", fontsize=8)
        ax.set_axis_off()
    fig.colorbar(im, ax=axes, shrink=0.8)
    figs.append((f"abundance of {names[k]}", fig))
    epochs = card["training"]["epochs_run"]
    text = (f"All data here are simulated ({notice}). Libraries: {len(names)} classes, bundles of jittered "
            f"variants; scene: {size} x {size} px, 239 PRISMA-like bands, other bundle members, illumination "
            f"and albedo variability, 30 dB noise. Model: {card['n_parameters']:,} parameters, "
            f"R = {card['config']['n_dims']} ({card['projection']['rule']}), {epochs} epochs on "
            f"{card['training']['n_train_patches']} synthetic {card['config']['patch']} x "
            f"{card['config']['patch']} patches. Section time {time.perf_counter() - t0:.0f} s.")
    ctx.report.add_section("minmap: library-trained mineral mapping (simulated)", text, figures=figs,
                           tables=[("network vs FCLS class-mean baseline", summary_rows(metrics))])
