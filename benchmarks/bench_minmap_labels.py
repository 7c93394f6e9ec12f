"""Benchmark (accuracy): do labelled scene pixels help when the libraries do not match the scene?

A simulated scene (``orbitml minmap simulate``'s example) is mapped by two models trained with the
same seed and settings: one from the libraries alone, one from the libraries plus the truth labels
of the scene's LEFT half (``labels:`` in the manifest, validation by spatial blocks).  The libraries
are first distorted the way real libraries differ from a scene (laboratory vs orbital reflectance):
their wavelengths shifted by ``--shift`` nm and a smooth continuum slope applied.  Both models are
scored on the RIGHT half only, which no label touches (overall accuracy against the truth classes;
Unclassified counts as wrong, and the out-of-library rejection is reported separately).

    python benchmarks/bench_minmap_labels.py [--quick] [--seed 0] [--shift 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml


def _distort(lib_dir: Path, shift: float, slope: float) -> None:
    from orbitml.spectra import read_library, write_library
    from orbitml.spectra.library import SpectralLibrary

    for p in sorted(lib_dir.iterdir()):
        lib = read_library(p)
        wl = lib.wavelength
        t = (wl - wl.min()) / np.ptp(wl)
        S = lib.spectra * (1.0 + slope * (t - 0.5))
        write_library(SpectralLibrary(S, wl + shift, lib.names), p, overwrite=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shift", type=float, default=20.0, help="library wavelength shift (nm)")
    ap.add_argument("--slope", type=float, default=0.3, help="relative continuum slope across the range")
    args = ap.parse_args()
    import torch

    from orbitml.io import open_scene
    from orbitml.minmap import manifest as mm
    from orbitml.minmap.mapping import map_scene
    from orbitml.minmap.model import model_from_weights
    from orbitml.minmap.run import write_simulation
    from orbitml.minmap.train import train

    torch.set_num_threads(2)
    size = 48 if args.quick else 80
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        paths = write_simulation(d, shape=(size, size), seed=args.seed, quick=True)
        _distort(d / "libraries", args.shift, args.slope)
        scene = open_scene(paths["scene"])
        truth = open_scene(paths["truth_classes"]).values[0].astype(int)
        half = size // 2
        lab = truth.copy()
        lab[:, half:] = 0
        from orbitml.io.classmap import read_class_table, write_class_map

        names = read_class_table(paths["truth_classes"]).names
        write_class_map(lab, d / "labels_left.tif", names, crs=scene.rio.crs, transform=scene.rio.transform())
        base = yaml.safe_load(paths["manifest"].read_text())
        base["seed"] = args.seed
        base["training"].update(epochs=6 if args.quick else 12)
        results = {}
        for name, extra in (("libraries only", {}),
                            ("libraries + left-half labels", {"labels": {"raster": "labels_left.tif", "block": 8,
                                                                          "max_per_class": 400}})):
            man = dict(base, out=f"model_{len(results)}", **extra)
            mp = d / f"manifest_{len(results)}.yaml"
            mp.write_text(yaml.safe_dump(man), encoding="utf-8")
            out = train(mm.load(mp), mp, log=lambda *a: None)
            model, card = model_from_weights(out)
            res = map_scene(model, card, scene)
            right = np.zeros_like(truth, bool)
            right[:, half:] = True
            v = right & res.valid
            acc = float((res.classes[v] == truth[v]).mean())
            rej = float(res.rejected[v].mean()) if res.rejected is not None else 0.0
            res_nr = map_scene(model, card, scene, reject=False)
            acc_nr = float((res_nr.classes[v] == truth[v]).mean())
            results[name] = {"right_half_accuracy": round(acc, 4), "rejected_share": round(rej, 4),
                             "accuracy_without_rejection": round(acc_nr, 4),
                             "scene_val_acc": card["metrics"].get("scene_val_acc")}
            print(f"{name:32s} right-half accuracy {acc:.3f} (rejected {rej:.1%}; without rejection "
                  f"{acc_nr:.3f})" + (f"; held-out label blocks {card['metrics']['scene_val_acc']:.3f}"
                                      if "scene_val_acc" in card["metrics"] else ""))
    print(json.dumps({"shift_nm": args.shift, "slope": args.slope, "seed": args.seed, "size": size,
                      "results": results}))


if __name__ == "__main__":
    main()
