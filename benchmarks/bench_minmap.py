"""Benchmark: whole-scene minmap mapping, fully convolutional vs one patch per pixel, same network, same run.

Scene: a simulated 1000 x 1000 x 239 cube (``--quick``: 160 x 160) mapped with the default network
(patch 27, width 120, R = 15, about 1.25 M parameters; random weights: speed does not depend on them).

* orbitml: :func:`orbitml.minmap.mapping.map_scene`, the streamed fully convolutional pass (row blocks
  with a 13-pixel halo, band projection included), timed on the whole scene;
* anchor: :func:`orbitml.minmap.mapping.per_pixel`, one 27 x 27 patch per pixel through the same network
  (batches of 64), timed on a sample of pixels and EXTRAPOLATED to the whole scene (stated in the output);
* training throughput: forward + backward + AdamW step on 27 x 27 patches (batch 32) with the training
  loss (Dice-Focal + abundance MSE), patches per second.

Prints the ratio (target: fully convolutional at least 20x faster).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def _scene(h: int, w: int, seed: int = 0):
    from orbitml.scene import make_scene
    from orbitml.simulate.minmap import prisma_like_bands
    from orbitml.simulate.scene import smooth_simplex
    from orbitml.simulate.spectra import library_from_families

    wl, fw = prisma_like_bands(239)
    rng = np.random.default_rng(seed)
    E = library_from_families(wl, ["kaolinite", "al_smectite", "jarosite", "hematite", "mg_carbonate"]).spectra
    A = smooth_simplex(E.shape[0], (h, w), 20.0, 0.3, rng).astype(np.float32)
    cube = np.einsum("kb,khw->bhw", E.astype(np.float32), A)
    cube += rng.standard_normal(cube.shape, dtype=np.float32) * 0.005
    return make_scene(cube, wavelength=wl, fwhm=fw, crs="EPSG:32633", transform=(0, 30, 0, 0, 0, -30))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="160 x 160 scene, smaller samples")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sample", type=int, default=None, help="pixels timed for the per-pixel anchor")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    size = args.size or (160 if args.quick else 1000)
    sample = args.sample or (128 if args.quick else 384)

    from orbitml.minmap.mapping import check_bands, map_scene, per_pixel, project_block
    from orbitml.minmap.model import MinmapModel
    from orbitml.nn.minmap_cnn import dice_focal_loss

    t = time.perf_counter()
    scene = _scene(size, size)
    t_scene = time.perf_counter() - t
    wl = scene.coords["wavelength"].values
    R, K = 15, 6
    torch.manual_seed(0)
    model = MinmapModel(wl.size, R, K)  # patch 27, width 120
    with torch.no_grad():
        model.proj_weight.copy_(torch.randn(wl.size, R) * 0.1)
    model.eval()
    n_par = sum(p.numel() for p in model.net.parameters())
    card = {"bands": {"wavelength_nm": wl.tolist(), "fwhm_nm": scene.coords["fwhm"].values.tolist()},
            "threshold": 0.5, "config": {"n_classes": K}, "classes": [f"c{i}" for i in range(K)]}

    t = time.perf_counter()
    res = map_scene(model, card, scene, progress=True)
    t_fcn = time.perf_counter() - t
    n_pix = size * size

    # anchor: one patch per pixel, same network, on a sample of pixels (timed), extrapolated
    idx = check_bands(scene, card)
    rows = slice(0, min(size, 64))
    z, _ = project_block(model, np.asarray(scene.values[idx][:, rows]), scene.rio.nodata, None)
    rng = np.random.default_rng(1)
    # rows at least a halo (13 px) away from the end of this 64-row strip: their neighbourhoods are the scene's
    last = z.shape[1] if z.shape[1] == size else z.shape[1] - 13
    yx = np.column_stack([rng.integers(0, last, sample), rng.integers(0, size, sample)])
    per_pixel(model, z, yx[:8])  # warm-up
    t = time.perf_counter()
    prob, ab = per_pixel(model, z, yx, batch=64)
    t_sample = time.perf_counter() - t
    t_pp = t_sample / sample * n_pix
    # the sampled per-pixel results agree with the fully convolutional map (same rows, same network)
    agree = float(np.max(np.abs(ab - res.abundances[:, yx[:, 0], yx[:, 1]].T)))

    # training throughput
    lm_net = model.net.train()
    opt = torch.optim.AdamW(lm_net.parameters(), lr=1e-3)
    bs, steps = 32, (3 if args.quick else 6)
    x = torch.randn(bs, R, 27, 27)
    y = torch.randint(0, K, (bs,))
    a = torch.softmax(torch.randn(bs, K), 1)

    def step():
        logits, abund = lm_net(x)
        loss = dice_focal_loss(logits[:, :, 0, 0], y) + 5 * torch.nn.functional.mse_loss(abund[:, :, 0, 0], a)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    t_train = time.perf_counter() - t

    out = {"scene": f"{size} x {size} x 239", "parameters": n_par, "threads": args.threads,
           "scene_build_s": round(t_scene, 2),
           "fcn_s": round(t_fcn, 2), "fcn_pixels_per_s": round(n_pix / t_fcn, 1),
           "per_pixel_sample": sample, "per_pixel_sample_s": round(t_sample, 2),
           "per_pixel_extrapolated_s": round(t_pp, 1), "per_pixel_pixels_per_s": round(sample / t_sample, 2),
           "ratio": round(t_pp / t_fcn, 1), "target_ratio": 20,
           "max_abs_diff_sampled_abundances": agree,
           "train_patches_per_s": round(bs * steps / t_train, 1)}
    print(json.dumps(out, indent=2))
    print(f"fully convolutional: {n_pix / t_fcn:,.0f} px/s ({t_fcn:.1f} s); per-pixel patches: "
          f"{sample / t_sample:,.1f} px/s (timed on {sample} pixels, extrapolated to {t_pp:,.0f} s); "
          f"ratio {t_pp / t_fcn:.0f}x (target >= 20x); training {bs * steps / t_train:.1f} patches/s")


if __name__ == "__main__":
    main()
