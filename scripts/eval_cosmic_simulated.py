"""Score cosmic-ray U-Nets on one fixed simulated test set that no training recipe draws.

    python scripts/eval_cosmic_simulated.py MODEL [MODEL ...]      (a shipped name or a .safetensors path)

30 frames of 384 x 384 px: 6 each of simulated sky frames (star PSF FWHM 1.5-5 px, exact noise model),
sky frames 1.2-1.6 times noisier than their gain/read-noise model, MDIS-like 12-bit, MDIS-like 8-bit
companded, LASCO-like coronagraph; hits injected at 4 hits/cm^2/s over 60 s.  The generators are seeded
770001-770005, which no recipe uses (recipes draw everything from ``default_rng(seed)`` and
``default_rng(seed + 10007)`` with small seeds).  Input is normalised as ``detect_unet`` does (block
median sky of the frame with its hits).  Printed: pooled pixel detection at FPR 1e-4 / 1e-3 / 5e-3 and per
kind at 1e-3.  For choosing between recipe variants without touching the real benchmark frames.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SHAPE = (384, 384)
GROUPS = [("sky", (1.5, 5.0), None), ("sky_noisy", (1.5, 5.0), (1.2, 1.6)), ("mdis12", None, None),
          ("mdis8", None, None), ("lasco", None, None)]


def build_set():
    from orbitml.cosmic.detect import normalise
    from orbitml.cosmic.train import mission_bases, simulated_bases
    from orbitml.simulate.ccd import inject_cosmic_rays

    xs, ys, kinds = [], [], []
    for gi, (kind, fwhm, mismatch) in enumerate(GROUPS):
        rng = np.random.default_rng(770001 + gi)
        bases = (simulated_bases(6, SHAPE, rng, fwhm, mismatch) if kind.startswith("sky")
                 else mission_bases({kind: 6}, SHAPE, rng))
        for b in bases:
            inj = inject_cosmic_rays(b.e, rate_per_cm2_s=4.0, exposure_s=60.0, seed=int(rng.integers(2**31)))
            img = b.chain(inj.image) if b.chain is not None else inj.image
            xs.append(normalise(img, 1.0, b.read_noise))
            ys.append(inj.mask)
            kinds.append(kind)
    return np.stack(xs), np.stack(ys), np.array(kinds)


def main() -> int:
    import torch

    from orbitml.cosmic.evaluate import detection_at_fpr
    from orbitml.cosmic.shipped import resolve_model
    from orbitml.nn.cosmic_unet import load_model, n_parameters, predict_prob

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y, kinds = build_set()
    for m in args.models:
        path = resolve_model(m)[0]
        net, _ = load_model(path)
        t = time.perf_counter()
        prob = np.stack([predict_prob(net, xi) for xi in x])
        r = detection_at_fpr(prob, y, (1e-4, 1e-3, 5e-3))
        per = {k: detection_at_fpr(prob[kinds == k], y[kinds == k], (1e-3,))[1e-3]["tpr"]
               for k in dict.fromkeys(kinds)}
        pooled = " / ".join(f"{v['tpr']:.3f}" for v in r.values())
        print(f"{m}: {n_parameters(net)} parameters; all {pooled}; "
              + "  ".join(f"{k} {v:.3f}" for k, v in per.items()) + f"  ({time.perf_counter() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
