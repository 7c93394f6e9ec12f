"""Cosmic-ray detection: learned U-Net vs L.A.Cosmic (astroscrappy), and the classical path's overhead.

Claims checked (anchors run in the same process):
1. Detection rate at 0.1% (and 0.01%, 0.5%) pixel false-positive rate on held-out simulated frames
   built on the real SAAO 1.0 m frame: the U-Net vs astroscrappy (whose mask-only output is traced by
   sweeping sigclip and interpolated on the upper envelope of its operating points).
   The U-Net is trained here (``orbitml.cosmic.train``) on the *top* half of the SAAO frame, the GMOS
   cutout and simulated frames; it is tested on the *bottom* half with new hits.
2. Time per megapixel: U-Net inference (normalisation + strips) vs astroscrappy.detect_cosmics.
3. Classical path (read_frame + detect_lacosmic + cleaning) vs raw astroscrappy on the same frame.

Run:  .venv/bin/python benchmarks/bench_cosmic_detect.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ORBITML_SHARED_DATA", ROOT.parent / "shared" / "data"))
SAAO = DATA / "ccd" / "saao1m_a8280271_raw.fits"
GMOS = DATA / "ccd" / "gmos_S20190808S0048_cutout.fits"


def timeit(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if not SAAO.exists():
        print(f"real data not found at {SAAO}; nothing to benchmark")
        return 0
    import astroscrappy
    import torch
    from astropy.io import fits

    from orbitml.cosmic.detect import detect_lacosmic, detect_unet
    from orbitml.cosmic.evaluate import detection_at_fpr, hit_metrics, mask_rates, tpr_at_fpr_from_points
    from orbitml.cosmic.ingest import Frame, read_frame
    from orbitml.cosmic.train import TrainManifest, base_from_frame, train
    from orbitml.nn.cosmic_unet import load_model
    from orbitml.simulate.ccd import inject_cosmic_rays

    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp(prefix="bench_cosmic_"))
    saao = read_frame(SAAO)
    half = saao.shape[0] // 2
    # training half of the real frame, as its own FITS (already overscan-corrected ADU)
    hdr = fits.Header({"GAIN": saao.gain, "RDNOISE": saao.read_noise, "EXPTIME": saao.exptime,
                       "TELESCOP": "SAAO 1.0m"})
    fits.PrimaryHDU(saao.data[:half], header=hdr).writeto(tmp / "saao_top.fits")
    man = TrainManifest(frames=[str(tmp / "saao_top.fits"), str(GMOS)], simulated=3 if args.quick else 6,
                        n_patches=768 if args.quick else 2048, n_val=64 if args.quick else 128,
                        epochs=4 if args.quick else 5, batch_size=16, base=8, seed=0, out=str(tmp / "unet"))
    t = time.perf_counter()
    card = train(man)
    t_train = time.perf_counter() - t
    net, card = load_model(tmp / "unet.safetensors")

    # held-out test frames: bottom half of the SAAO frame, own hits removed (and ignored), new hits
    fits.PrimaryHDU(saao.data[half:], header=hdr).writeto(tmp / "saao_bottom.fits")
    base = base_from_frame(tmp / "saao_bottom.fits")
    n_test = 4 if args.quick else 10
    rng = np.random.default_rng(12345)
    probs, truths, valids, lac_masks, ids = [], [], [], {}, []
    sweep = [2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 8.0]
    for i in range(n_test):
        inj = inject_cosmic_rays(base.e, rate_per_cm2_s=4.0, exposure_s=float(saao.exptime),
                                 pixel_size_um=15.0, seed=int(rng.integers(2**31)))
        fr = Frame(path=f"test{i}", data=inj.image / np.float32(saao.gain), gain=saao.gain,
                   read_noise=saao.read_noise, exptime=saao.exptime, time=None, pixel_size_um=15.0,
                   instrument="saao1m", saturation_adu=saao.saturation_adu, bad=np.zeros(base.e.shape, bool))
        det = detect_unet(fr, net, card, clean=False)
        probs.append(det.prob)
        truths.append(inj.mask)
        valids.append(~base.ignore)
        ids.append(np.where(base.ignore, 0, inj.hit_id))
        for s in sweep:
            lac_masks.setdefault(s, []).append(detect_lacosmic(fr, sigclip=s, clean=False).mask)
    P, T, V = np.stack(probs), np.stack(truths), np.stack(valids)
    unet_rates = detection_at_fpr(P, T, (1e-4, 1e-3, 5e-3), V)
    points = [mask_rates(np.stack(lac_masks[s]), T, V) for s in sweep]
    print(f"# cosmic detection benchmark ({'quick' if args.quick else 'full'}); machine shared, loaded")
    print(f"U-Net trained in {t_train:.0f} s ({man.n_patches} patches x {man.epochs} epochs, "
          f"{card['n_parameters']} parameters); {n_test} held-out frames of {base.e.shape[1]}x{base.e.shape[0]} px, "
          f"{int(T.sum())} hit pixels")
    print("astroscrappy operating points (sigclip: fpr, tpr): " +
          ", ".join(f"{s}: {a:.2e}, {b:.3f}" for s, (a, b) in zip(sweep, points, strict=True)))
    for f in (1e-4, 1e-3, 5e-3):
        u = unet_rates[f]["tpr"]
        a = tpr_at_fpr_from_points(points, f)
        print(f"detection rate at FPR {f:g}: U-Net {u:.3f}  astroscrappy {a:.3f}  ratio {u / max(a, 1e-9):.2f}")
    thr = unet_rates[1e-3]["threshold"]
    hu = hit_metrics(P >= thr, np.stack(ids))
    ha = hit_metrics(np.stack(lac_masks[4.5]), np.stack(ids))
    print(f"hits (>=50% px): U-Net@0.1%FPR recall {hu['recall']:.3f} precision {hu['precision']:.3f}; "
          f"astroscrappy sigclip 4.5 recall {ha['recall']:.3f} precision {ha['precision']:.3f}")

    # speed on ~1 Mpx (the SAAO frame tiled 2 x 2)
    big = np.tile(saao.data, (2, 2))
    fr_big = Frame(path="big", data=big, gain=saao.gain, read_noise=saao.read_noise, exptime=saao.exptime,
                   time=None, pixel_size_um=15.0, instrument="saao1m", saturation_adu=saao.saturation_adu,
                   bad=np.zeros(big.shape, bool))
    mpx = big.size / 1e6
    rep = 3 if args.quick else 5
    big = np.ascontiguousarray(big)
    sat_e = saao.saturation_adu * saao.gain
    t_as = timeit(lambda: astroscrappy.detect_cosmics(big, gain=saao.gain, readnoise=saao.read_noise,
                                                      satlevel=sat_e), rep) / mpx
    t_un = timeit(lambda: detect_unet(fr_big, net, card), rep) / mpx
    print(f"time per Mpx: U-Net (normalise + infer + clean) {t_un:.3f} s  astroscrappy {t_as:.3f} s  "
          f"ratio {t_un / t_as:.2f}")

    # classical path vs astroscrappy on the same bias-corrected array (prepared outside the timing:
    # astroscrappy on raw counts with the ~300 ADU bias still in is faster only because the bias inflates
    # its noise model, i.e. it detects less; that is not a fair anchor)
    def ours():
        detect_lacosmic(read_frame(SAAO))

    prepared = np.ascontiguousarray(saao.data)

    def anchor():
        astroscrappy.detect_cosmics(prepared, gain=saao.gain, readnoise=saao.read_noise, satlevel=sat_e)

    rep = 5 if args.quick else 9
    t_o, t_a = [], []
    for _ in range(rep):  # interleaved, so load changes on the shared machine hit both alike
        t_o.append(timeit(ours, 1))
        t_a.append(timeit(anchor, 1))
    t_o, t_a = statistics.median(t_o), statistics.median(t_a)
    print(f"classical path (read + overscan + L.A.Cosmic + clean) {t_o * 1e3:.0f} ms  astroscrappy "
          f"{t_a * 1e3:.0f} ms  ratio {t_o / t_a:.2f}  (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
