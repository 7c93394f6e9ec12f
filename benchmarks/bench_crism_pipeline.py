"""CRISM pipeline speed against crism_ml run here, in the same process, interleaved, per stage.

Both systems get the same synthetic training set (6,224 simulated labelled spectra in 16 images and
1,200 bland spectra) and the same synthetic 420 x 320 x 350 image (210 x 160 with --quick).  Training
is timed again on 16 images of ten times as many labelled spectra (64,787), where fixed per-model
costs weigh less, and on 64 images of 596,943 spectra: the size of crism_ml's published training set
(592,413 ratioed spectra, Zenodo record 13338091), what ``orbitml crism train`` is run on in practice
(about 15 s to simulate; peak memory about 6.5 GB with both systems' copies).  --quick skips both
larger sets, --no-full-size the largest.  orbitml runs the path users run:
``classify_scene`` on a scene, as ``orbitml crism classify`` does (scene -> one C-ordered copy of the
work bands -> bad values -> column spikes -> blandness -> column ratioing -> despiking -> 15 HBMs ->
regions).  crism_ml (Plebani et al. 2022, ``../shared/anchors/crism_ml``, unchanged) runs its
``run_on_images`` stages: ``filter_bad_pixels``, ``remove_spikes_column``, ``compute_bland_scores``,
``ratio``, ``remove_spikes``, ``compute_scores`` + ``filter_predictions``, with ``N_JOBS`` set to
``--threads``.  Runs alternate (orbitml, crism_ml, crism_ml, orbitml, ...); medians are printed.

crism_ml uses Bottleneck for its running median when it can import it (its usual configuration)
and a much slower numpy loop otherwise; the benchmark prints which.  Bottleneck is not an orbitml
dependency: ``--anchor-site DIR`` appends a folder holding it to ``sys.path`` (for example
``pip install --target DIR bottleneck`` without its numpy).

    .venv/bin/python benchmarks/bench_crism_pipeline.py [--quick] [--anchor-site DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from orbitml.crism import simdata as sd
from orbitml.crism.ensemble import CrismClassifier
from orbitml.crism.pipeline import classify_scene
from orbitml.crism.ratio import BlandModel
from orbitml.crism.settings import CrismSettings
from orbitml.scene import make_scene

ANCHOR = Path(__file__).resolve().parents[1] / ".." / "shared" / "anchors" / "crism_ml"
STAGES = [("bad values", "bad_values"), ("column spikes", "column_spikes"), ("blandness", "blandness"),
          ("column ratioing", "ratio"), ("despiking 11/7/3", "despike"), ("classification (15 HBMs)", "classify")]


def load_crism_ml(path: Path, jobs: int):
    sys.path.insert(0, str(path.resolve()))
    import crism_ml

    crism_ml.N_JOBS = jobs  # read by the submodules at import
    crism_ml.USE_CACHE = False
    import crism_ml.lab as cl
    import crism_ml.models as cm
    import crism_ml.preprocessing as cp
    import crism_ml.train as ct

    try:
        import bottleneck  # noqa: F401

        engine = "Bottleneck move_median"
    except ImportError:
        engine = "numpy loop (Bottleneck not importable: crism_ml's slow fallback)"
    return cp, cm, ct, cl, engine


def crism_ml_train(cp, cm, ct, cl, lab, bl):
    """crism_ml's train_model_bland + train_model on the given arrays (its code, no file cache)."""
    fin0, fin = ct.feat_masks()
    xb = bl["pixspec"].astype(np.float64)
    bad = np.sum(cp.spikes(xb[:, :cp.N_BANDS].copy(), 27, 10, mask=True), axis=1) > 0
    xb, ib = xb[~bad], bl["pixims"].ravel()[~bad]
    bmodel = cm.HBM(prior=cm.HBMPrior())
    bmodel.fit(cp.normr(xb[:, fin0[0]]), np.zeros(xb.shape[0], np.int16), ib)
    x = cp.remove_spikes(lab["pixspec"][:, :cp.N_BANDS].copy()).astype(np.float32)
    y = cl.relabel(lab["pixlabs"].ravel(), cl.ALIASES_TRAIN)
    g = lab["pixims"].ravel()

    def one(fm):
        m = cm.HBM(only_class=True, prior=cm.HBMPrior())
        m.fit(cp.norm_minmax(x[:, fm], axis=1), y, g)
        return m

    from crism_ml import N_JOBS
    from joblib import Parallel, delayed

    models = Parallel(n_jobs=N_JOBS)(delayed(one)(fm) for fm in fin)
    return ([bmodel], fin0), (models, fin), ct.iteration_weights(models[0].classes)


def crism_ml_run(cp, ct, cube, bmodels, models, ww):
    """crism_ml's run_on_images stages on one image; returns per-stage seconds and the predictions."""
    h, w, nb = cube.shape
    t = {}
    t0 = time.perf_counter()
    if_, rem = cp.filter_bad_pixels(cube.reshape(-1, nb), copy=True)
    t["bad_values"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if1 = cp.remove_spikes_column(if_.reshape(h, w, -1), 3, 5).reshape(if_.shape)
    t["column_spikes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    slog = ct.compute_bland_scores(if1, bmodels)
    t["blandness"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    slog_inf = cp.replace(slog, rem, -np.inf).reshape(h, w)
    if2 = cp.ratio(if1.reshape(h, w, -1), slog_inf).reshape(if_.shape)
    t["ratio"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ifm = cp.remove_spikes(if2.copy())
    t["despike"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sumlog = ct.compute_scores(ifm, models, ww)
    pred, _, _ = ct.filter_predictions(sumlog, models[0][0].classes, kls_thr=(0.5, 0.7))
    t["classify"] = time.perf_counter() - t0
    return t, pred.reshape(h, w)


def orbitml_run(scene, clf, bm, threads):
    t0 = time.perf_counter()
    res = classify_scene(scene, clf, bm, threads=threads)
    total = time.perf_counter() - t0
    t = dict(res.timings)
    t["total"] = total
    return t, res


def med(runs, key):
    return float(np.median([r[key] for r in runs]))


def time_training(cp, cm, ct, cl, lab, bl, repeat: int):
    """Interleaved training runs of both systems on one set: ``(seconds per system, orbitml's default
    models, crism_ml's models)``."""
    t_train = {"orbitml": [], "crism_ml": [], "orbitml_same": []}
    same = CrismSettings(heldout_fraction=0.0, ood_quantile=0.0)  # crism_ml's work: despike + 15 HBMs
    for r in range(repeat):
        order = ("orbitml", "crism_ml", "orbitml_same") if r % 2 == 0 else ("orbitml_same", "crism_ml", "orbitml")
        for who in order:
            t0 = time.perf_counter()
            if who == "orbitml":
                clf = CrismClassifier(CrismSettings()).fit(lab["pixspec"], lab["pixlabs"], lab["pixims"],
                                                           lab["wavelengths"])
                bm = BlandModel().fit(bl["pixspec"], bl["pixims"], bl["wavelengths"])
            elif who == "orbitml_same":
                CrismClassifier(same).fit(lab["pixspec"], lab["pixlabs"], lab["pixims"], lab["wavelengths"])
                BlandModel().fit(bl["pixspec"], bl["pixims"], bl["wavelengths"])
            else:
                theirs = crism_ml_train(cp, cm, ct, cl, lab, bl)
            t_train[who].append(time.perf_counter() - t0)
    return t_train, (clf, bm), theirs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="210 x 160 image, 3 repeats")
    ap.add_argument("--threads", type=int, default=2, help="orbitml worker threads = crism_ml N_JOBS")
    ap.add_argument("--repeat", type=int, default=None, help="runs per system (median reported)")
    ap.add_argument("--train-repeat", type=int, default=None, help="training runs per system")
    ap.add_argument("--anchor", type=Path, default=ANCHOR, help="crism_ml source folder")
    ap.add_argument("--anchor-site", type=Path, default=None, help="folder appended to sys.path (Bottleneck)")
    ap.add_argument("--no-full-size", action="store_true", help="skip the 596,943-spectrum training set")
    args = ap.parse_args()
    if args.anchor_site is not None:
        sys.path.append(str(args.anchor_site))
    if not (args.anchor / "crism_ml" / "preprocessing.py").is_file():
        raise SystemExit(f"crism_ml not found at {args.anchor}")
    cp, cm, ct, cl, engine = load_crism_ml(args.anchor, args.threads)
    rows, cols = (210, 160) if args.quick else (420, 320)
    repeat = args.repeat or (3 if args.quick else 5)
    train_repeat = args.train_repeat or (1 if args.quick else 3)
    print(f"image {rows} x {cols} x 350; orbitml threads {args.threads}, crism_ml N_JOBS {args.threads}; "
          f"crism_ml median filter: {engine}")

    lab = sd.simulate_labelled(n_images=16, pixels_per_class=80, seed=0)
    bl = sd.simulate_bland(seed=1)
    print(f"training set (both): {lab['pixspec'].shape[0]} labelled spectra in 16 images, "
          f"{bl['pixspec'].shape[0]} bland spectra; training is also timed on 16 images of ten times as many "
          "spectra, where fixed per-model costs matter less, and on 64 images of about 597,000 spectra, the "
          "size of crism_ml's published training set (not with --quick)")
    # warm-up: loads (or compiles) orbitml's numba kernels, and imports both systems' modules, so that
    # neither system's first timed run pays one-off import or compilation costs; 8 images, so that
    # orbitml's training takes its held-out path too (weights, temperature, OOD thresholds)
    wl = lab["wavelengths"]
    small = sd.simulate_image(rows=100, cols=16, codes=(6, 14), seed=4)
    t0 = time.perf_counter()
    few = sd.simulate_labelled(n_images=8, pixels_per_class=20, seed=9)
    wclf = CrismClassifier(CrismSettings()).fit(few["pixspec"], few["pixlabs"], few["pixims"], wl)
    wbm = BlandModel().fit(bl["pixspec"], bl["pixims"], bl["wavelengths"])
    classify_scene(make_scene(np.moveaxis(small["cube"], -1, 0), wavelength=wl), wclf, wbm, threads=args.threads)
    print(f"orbitml warm-up (numba compilation or cache load, imports): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    wb, wm, ww = crism_ml_train(cp, cm, ct, cl, few, bl)
    crism_ml_run(cp, ct, small["cube"].copy(), wb, wm, ww)
    print(f"crism_ml warm-up (imports, joblib workers): {time.perf_counter() - t0:.2f} s")
    t_train, (clf, bm), (bmodels, models, ww) = time_training(cp, cm, ct, cl, lab, bl, train_repeat)
    big = None if args.quick else sd.simulate_labelled(n_images=16, pixels_per_class=800, seed=0)
    t_big = time_training(cp, cm, ct, cl, big, bl, max(2, train_repeat - 2))[0] if big is not None else None
    n_big = None if big is None else big["pixspec"].shape[0]
    del big  # only the sizes are printed below
    full = None if args.quick or args.no_full_size else sd.simulate_labelled(n_images=64, pixels_per_class=1850,
                                                                              seed=0)
    t_full = time_training(cp, cm, ct, cl, full, bl, train_repeat)[0] if full is not None else None
    n_full = None if full is None else full["pixspec"].shape[0]
    del full

    im = sd.simulate_image(rows=rows, cols=cols, codes=(6, 14, 19, 30, 27, 9), seed=3)
    cube = im["cube"]
    scene = make_scene(np.ascontiguousarray(np.moveaxis(cube, -1, 0)), wavelength=wl, nodata=65535,
                       attrs={"source": "simulated"})

    ours, theirs = [], []
    for r in range(repeat):
        for who in (("orbitml", "crism_ml") if r % 2 == 0 else ("crism_ml", "orbitml")):
            if who == "orbitml":
                t, res = orbitml_run(scene, clf, bm, args.threads)
                ours.append(t)
            else:
                t0 = time.perf_counter()
                t, pred = crism_ml_run(cp, ct, cube, bmodels, models, ww)
                t["total"] = time.perf_counter() - t0
                theirs.append(t)

    print(f"\n| stage (median of {repeat}, interleaved) | crism_ml | orbitml | speed-up |")
    print("|---|---|---|---|")
    for name, key in STAGES:
        a, b = med(theirs, key), med(ours, key)
        print(f"| {name} | {a:.3f} s | {b:.3f} s | {a / b:.1f}x |")
    a, b = med(theirs, "total"), med(ours, "total")
    print(f"| total (orbitml: classify_scene wall time, incl. the scene copy and regions) | {a:.3f} s | {b:.3f} s "
          f"| {a / b:.1f}x |")
    for tt, n_spec in ((t_train, lab["pixspec"].shape[0]), (t_big, n_big), (t_full, n_full)):
        if tt is None:
            continue
        n = f"{n_spec:,} spectra (median of {len(tt['orbitml'])})"
        a, b = float(np.median(tt["crism_ml"])), float(np.median(tt["orbitml"]))
        c = float(np.median(tt["orbitml_same"]))
        print(f"| train on {n}, the same work (despike, bland HBM, 15 HBMs on all images) | {a:.2f} s | "
              f"{c:.2f} s | {a / c:.1f}x |")
        print(f"| train on {n}, orbitml's default (+ held-out weights, temperature, OOD thresholds, refit) "
              f"| {a:.2f} s | {b:.2f} s | {a / b:.1f}x |")
    dr_a = sum(med(theirs, k) for k in ("bad_values", "column_spikes", "blandness", "ratio", "despike"))
    dr_b = sum(med(ours, k) for k in ("bad_values", "column_spikes", "blandness", "ratio", "despike"))
    print(f"\ndespike + ratio (sum of the first five stages): crism_ml {dr_a:.3f} s, orbitml {dr_b:.3f} s "
          f"({dr_a / dr_b:.1f}x)")
    print("orbitml totals: " + ", ".join(f"{r['total']:.3f}" for r in ours)
          + "; crism_ml totals: " + ", ".join(f"{r['total']:.3f}" for r in theirs))
    valid = res.class_map >= 0
    print(f"classes in this image: orbitml {sorted(set(np.unique(res.class_map[valid]).tolist()))}, "
          f"crism_ml {sorted(set(np.unique(pred).tolist()))} (ensemble weights differ: learned vs crism_ml's table)")
    print("targets: no stage slower than crism_ml; classification and training >= 10x; whole pipeline >= 15x")


if __name__ == "__main__":
    main()
