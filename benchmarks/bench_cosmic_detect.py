"""Cosmic-ray detection: the *shipped* default U-Net vs astroscrappy (L.A.Cosmic) and deepCR, same run.

Claims checked (anchors run in the same process):
1. Detection rate at 0.01% / 0.1% / 0.5% pixel false-positive rate on held-out simulated hits injected into
   the real frames of ../shared/data/ccd/ (SAAO 1.0 m raw frame, GMOS-S cutout).  Their own hits are found
   with L.A.Cosmic, replaced and left out of the score.  The shipped model ``ccd-general`` never saw these
   frames (its recipe is simulation only).  astroscrappy gives masks only: it is traced by sweeping
   sigclip and interpolated on the upper envelope of its operating points.  deepCR (its pretrained mask
   model) runs where it is installed with its weights; otherwise the reason is printed.
2. Time per megapixel on CPU (2 threads): U-Net (normalise + infer + clean) vs astroscrappy.detect_cosmics
   (and deepCR's mask pass where it runs).
3. Classical path (read_frame + detect_lacosmic + cleaning) vs raw astroscrappy on the same frame.

Run:  .venv/bin/python benchmarks/bench_cosmic_detect.py [--quick] [--anchor-site /tmp/deepcr_site]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ORBITML_SHARED_DATA", ROOT.parent / "shared" / "data"))
SAAO = DATA / "ccd" / "saao1m_a8280271_raw.fits"
GMOS = DATA / "ccd" / "gmos_S20190808S0048_cutout.fits"
FPRS = (1e-4, 1e-3, 5e-3)


def timeit(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def load_deepcr():
    """(model, None) or (None, why not).  deepCR is not an orbitml dependency: install it for this run only."""
    try:
        from deepCR import deepCR  # noqa: N813
    except Exception as exc:  # ImportError, or its own imports failing
        return None, (f"deepCR is not installed here ({type(exc).__name__}: {exc}); install it for this run "
                      "only: `python -m pip install --no-deps --target /tmp/deepcr_site deepCR`, then "
                      "`python -m pip install --target /tmp/deepcr_site tensorboard` and delete from that folder "
                      "every package this environment already has (numpy, packaging, setuptools, ...: an extra "
                      "numpy or torch there would shadow this one), and pass `--anchor-site /tmp/deepcr_site` "
                      "(deepCR 0.3.1 ships its pretrained mask models; its training module imports tensorboard)")
    try:
        return deepCR(mask="ACS-WFC", device="CPU"), None
    except Exception as exc:
        return None, f"deepCR is installed but its pretrained ACS-WFC mask model cannot be loaded: {exc}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--anchor-site", help="a folder holding deepCR (pip install --target ...), put on sys.path")
    args = ap.parse_args()
    if args.anchor_site:
        sys.path.insert(0, str(Path(args.anchor_site).resolve()))
    if not SAAO.exists():
        print(f"real data not found at {SAAO}; nothing to benchmark")
        return 0
    import astroscrappy
    import torch

    from orbitml.cosmic.detect import detect_lacosmic, detect_unet
    from orbitml.cosmic.evaluate import detection_at_fpr, hit_metrics, mask_rates, tpr_at_fpr_from_points
    from orbitml.cosmic.ingest import Frame, read_frame
    from orbitml.cosmic.shipped import DEFAULT, shipped_models
    from orbitml.cosmic.train import base_from_frame
    from orbitml.nn.cosmic_unet import load_model
    from orbitml.simulate.ccd import inject_cosmic_rays

    torch.set_num_threads(2)
    net, card = load_model(shipped_models()[DEFAULT])
    dcr, dcr_why = load_deepcr()
    n_test = 2 if args.quick else 6
    sweep = [2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 8.0]
    rng = np.random.default_rng(12345)
    P, T, V, ids, D = [], [], [], [], []
    lac = {s: [] for s in sweep}
    per_frame = {}
    for path in (SAAO, GMOS):
        fr0 = read_frame(path)
        base = base_from_frame(path)
        fp, ft, fv = [], [], []
        for _ in range(n_test):
            inj = inject_cosmic_rays(base.e, rate_per_cm2_s=4.0, exposure_s=float(fr0.exptime or 100.0),
                                     pixel_size_um=15.0, seed=int(rng.integers(2**31)))
            fr = Frame(path=path.name, data=inj.image / np.float32(fr0.gain), gain=fr0.gain,
                       read_noise=fr0.read_noise, exptime=fr0.exptime, time=None, pixel_size_um=15.0,
                       instrument=fr0.instrument, saturation_adu=fr0.saturation_adu, bad=fr0.bad)
            det = detect_unet(fr, net, card, clean=False)
            valid = ~base.ignore
            P.append(det.prob.ravel())
            T.append(inj.mask.ravel())
            V.append(valid.ravel())
            ids.append(np.where(base.ignore, 0, inj.hit_id))
            fp.append(det.prob.ravel())
            ft.append(inj.mask.ravel())
            fv.append(valid.ravel())
            for s in sweep:
                lac[s].append(detect_lacosmic(fr, sigclip=s, clean=False).mask.ravel())
            if dcr is not None:
                D.append(np.asarray(dcr.clean(inj.image.astype(np.float32), inpaint=False, binary=False),
                                    np.float32).ravel())
        per_frame[path.name] = detection_at_fpr(np.concatenate(fp), np.concatenate(ft), (1e-3,),
                                                np.concatenate(fv))[1e-3]["tpr"]
    Pc, Tc, Vc = np.concatenate(P), np.concatenate(T), np.concatenate(V)
    unet = detection_at_fpr(Pc, Tc, FPRS, Vc)
    points = [mask_rates(np.concatenate(lac[s]), Tc, Vc) for s in sweep]
    print(f"# cosmic detection benchmark ({'quick' if args.quick else 'full'}); shipped model {DEFAULT} "
          f"({card['n_parameters']} parameters, sha256 {card['weights_sha256'][:12]}), never trained on these "
          f"frames; machine shared, loaded")
    print(f"{n_test} held-out frames each of {SAAO.name} and {GMOS.name}, {int(Tc.sum())} simulated hit pixels")
    print("astroscrappy operating points (sigclip: fpr, tpr): " +
          ", ".join(f"{s}: {a:.2e}, {b:.3f}" for s, (a, b) in zip(sweep, points, strict=True)))
    if dcr is None:
        print(f"deepCR: not run -- {dcr_why}")
    else:
        dres = detection_at_fpr(np.concatenate(D), Tc, FPRS, Vc)
    for f in FPRS:
        u, a = unet[f]["tpr"], tpr_at_fpr_from_points(points, f)
        line = f"detection rate at FPR {f:g}: U-Net {u:.3f}  astroscrappy {a:.3f}  ratio {u / max(a, 1e-9):.2f}"
        if dcr is not None:
            line += f"  deepCR {dres[f]['tpr']:.3f}  ratio {u / max(dres[f]['tpr'], 1e-9):.2f}"
        print(line)
    print("U-Net detection at 0.1% FPR per frame: " + ", ".join(f"{k} {v:.3f}" for k, v in per_frame.items()))
    thr = unet[1e-3]["threshold"]
    shapes = [read_frame(p).shape for p in (SAAO, GMOS) for _ in range(n_test)]
    split = np.cumsum([a * b for a, b in shapes])[:-1]
    pm = [m.reshape(s) for m, s in zip(np.split(Pc >= thr, split), shapes, strict=True)]
    am = [m.reshape(s) for m, s in zip(np.split(np.concatenate(lac[4.5]), split), shapes, strict=True)]
    hu = [hit_metrics(m, i) for m, i in zip(pm, ids, strict=True)]
    ha = [hit_metrics(m, i) for m, i in zip(am, ids, strict=True)]

    def pool(hs):
        f, t = sum(h["n_found"] for h in hs), sum(h["n_true_hits"] for h in hs)
        r, n = sum(h["n_true_regions"] for h in hs), sum(h["n_regions"] for h in hs)
        return f / max(t, 1), r / max(n, 1)

    (ur, up), (ar, ap_) = pool(hu), pool(ha)
    print(f"hits (>=50% px): U-Net @0.1% FPR (threshold {thr:.3g}) recall {ur:.3f} precision {up:.3f}; "
          f"astroscrappy sigclip 4.5 recall {ar:.3f} precision {ap_:.3f}; card threshold {card['threshold']:.3g}")

    # speed on ~1 Mpx (the SAAO frame tiled 2 x 2)
    saao = read_frame(SAAO)
    big = np.ascontiguousarray(np.tile(saao.data, (2, 2)))
    fr_big = Frame(path="big", data=big, gain=saao.gain, read_noise=saao.read_noise, exptime=saao.exptime,
                   time=None, pixel_size_um=15.0, instrument="saao1m", saturation_adu=saao.saturation_adu,
                   bad=np.zeros(big.shape, bool))
    mpx = big.size / 1e6
    rep = 3 if args.quick else 5
    sat_e = saao.saturation_adu * saao.gain
    t_as, t_un, t_dc = [], [], []
    for _ in range(rep):  # interleaved, so load changes on the shared machine hit both alike
        t_as.append(timeit(lambda: astroscrappy.detect_cosmics(big, gain=saao.gain, readnoise=saao.read_noise,
                                                               satlevel=sat_e), 1) / mpx)
        t_un.append(timeit(lambda: detect_unet(fr_big, net, card), 1) / mpx)
        if dcr is not None:
            t_dc.append(timeit(lambda: dcr.clean(big * np.float32(saao.gain), inpaint=False), 1) / mpx)
    t_as, t_un = statistics.median(t_as), statistics.median(t_un)
    line = f"time per Mpx: U-Net (normalise + infer + clean) {t_un:.3f} s  astroscrappy {t_as:.3f} s  " \
           f"ratio {t_un / t_as:.2f}"
    if t_dc:
        line += f"  deepCR {statistics.median(t_dc):.3f} s"
    print(line)

    def ours():
        detect_lacosmic(read_frame(SAAO))

    prepared = np.ascontiguousarray(saao.data)

    def anchor():
        astroscrappy.detect_cosmics(prepared, gain=saao.gain, readnoise=saao.read_noise, satlevel=sat_e)

    rep = 5 if args.quick else 9
    t_o, t_a = [], []
    for _ in range(rep):
        t_o.append(timeit(ours, 1))
        t_a.append(timeit(anchor, 1))
    t_o, t_a = statistics.median(t_o), statistics.median(t_a)
    print(f"classical path (read + overscan + L.A.Cosmic + clean) {t_o * 1e3:.0f} ms  astroscrappy "
          f"{t_a * 1e3:.0f} ms  ratio {t_o / t_a:.2f}  (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
