"""Hit categorisation: accuracy per class on held-out simulated hits, learned forest vs rule baseline.

Also times features + classification of one 1024 x 1024 frame against astroscrappy's detection of the
same frame (the anchor: categorising should cost little next to detecting).

    .venv/bin/python benchmarks/bench_cosmic_categorise.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from orbitml.cosmic.categorise import CLASSES, DEFAULT_TRAINING, HitClassifier, simulate_labelled_hits
from orbitml.cosmic.features import hit_table, replace_masked_median
from orbitml.simulate.ccd import inject_cosmic_rays, simulate_frame


def per_class(truth: np.ndarray, pred: np.ndarray) -> dict[str, tuple[int, float]]:
    return {c: (int((truth == c).sum()), float(np.mean(pred[truth == c] == c)) if (truth == c).any()
                else float("nan")) for c in CLASSES}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    n_train = 8 if args.quick else DEFAULT_TRAINING["n_frames"]
    n_test = 6 if args.quick else 24
    shape = tuple(DEFAULT_TRAINING["shape"])
    t0 = time.perf_counter()
    train = simulate_labelled_hits(n_train, shape, seed=DEFAULT_TRAINING["seed"])
    test = simulate_labelled_hits(n_test, shape, seed=12345)  # held out: other frames, other seed
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    forest = HitClassifier("forest", random_state=0).fit(train, train["truth"])
    t_fit = time.perf_counter() - t0
    truth = test["truth"].to_numpy()
    p_forest = forest.predict(test)
    p_rules = HitClassifier("rules").predict(test)
    a_f, a_r = per_class(truth, p_forest), per_class(truth, p_rules)
    print(f"training hits {len(train)} ({n_train} frames {shape}), held-out hits {len(test)} ({n_test} frames); "
          f"simulation {t_sim:.1f} s, forest fit {t_fit:.1f} s")
    print(f"{'class':<11} {'n':>6} {'forest':>8} {'rules':>8}")
    for c in CLASSES:
        n, f = a_f[c]
        print(f"{c:<11} {n:>6d} {f:>8.3f} {a_r[c][1]:>8.3f}")
    acc_f, acc_r = float(np.mean(p_forest == truth)), float(np.mean(p_rules == truth))
    cos = np.isin(truth, ["spot", "track", "worm"])
    cf = float(np.mean(np.isin(p_forest, ["spot", "track", "worm"]) == cos))
    cr = float(np.mean(np.isin(p_rules, ["spot", "track", "worm"]) == cos))
    bal_f = np.nanmean([a_f[c][1] for c in CLASSES])
    bal_r = np.nanmean([a_r[c][1] for c in CLASSES])
    print(f"overall accuracy      forest {acc_f:.3f}  rules {acc_r:.3f}")
    print(f"balanced accuracy     forest {bal_f:.3f}  rules {bal_r:.3f}")
    print(f"cosmic vs not-cosmic  forest {cf:.3f}  rules {cr:.3f}")
    print(f"error-rate ratio (rules / forest): {(1 - acc_r) / max(1 - acc_f, 1e-9):.2f}x")

    # speed: categorise one 1024^2 frame vs astroscrappy detecting it
    frame, truth_f = simulate_frame((1024, 1024), n_stars=40, hot_columns=2, seed=3)
    inj = inject_cosmic_rays(frame, rate_per_cm2_s=5.0, exposure_s=300.0, seed=4)
    mask = inj.mask
    clean = replace_masked_median(inj.image, mask)
    reps = 1 if args.quick else 3
    t_cat = []
    for _ in range(reps):
        t0 = time.perf_counter()
        table = hit_table(inj.image, clean, mask)
        forest.predict_proba(table)
        t_cat.append(time.perf_counter() - t0)
    try:
        import astroscrappy

        t_as = []
        for _ in range(reps):
            t0 = time.perf_counter()
            astroscrappy.detect_cosmics(inj.image, gain=1.0, readnoise=5.0, sigclip=4.5, satlevel=1.5e5)
            t_as.append(time.perf_counter() - t0)
        tc, ta = min(t_cat), min(t_as)
        print(f"1024x1024 frame, {len(table)} regions: features+forest {tc:.3f} s, astroscrappy detection "
              f"{ta:.3f} s (anchor); ratio {tc / ta:.2f}")
    except ImportError:
        print(f"1024x1024 frame, {len(table)} regions: features+forest {min(t_cat):.3f} s (astroscrappy missing)")


if __name__ == "__main__":
    main()
