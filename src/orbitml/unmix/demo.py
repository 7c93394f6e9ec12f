"""Demo section: endmember count, extraction and abundances on a simulated scene with known truth,
the MiSiCNet sim1 scene when ../shared/data is present, and library augmentation throughput."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def _sim1() -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    root = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "hsi" / "sim1"
    if not (root / "Y_clean.mat").exists():
        return None
    import scipy.io as sio

    Y = sio.loadmat(root / "Y_clean.mat")["Y_clean"]
    E = sio.loadmat(root / "E.mat")["E"].T
    A = sio.loadmat(root / "A_true.mat")["A_true"]
    return Y.reshape(-1, Y.shape[-1]), E, A.reshape(-1, A.shape[-1])


def section(ctx) -> None:
    import matplotlib.pyplot as plt

    from orbitml.io import write_scene
    from orbitml.report.figures import spectra_figure
    from orbitml.scene import from_pixels, pixels
    from orbitml.simulate import simulate_scene
    from orbitml.spectra.augment import augment_library, default_augmenter
    from orbitml.unmix import abundance_rmse, atgp, avca, estimate_count, fcls, nfindr, sad, sre_db, vca

    folder = ctx.folder("unmix")
    shape, p = ((60, 60), 5) if ctx.quick else ((120, 120), 6)
    sim = simulate_scene(shape=shape, n_endmembers=p, snr_db=35.0, pure_pixels=True, nodata_fraction=0.05,
                         seed=ctx.seed, temperature=0.4)
    X, index = pixels(sim.scene)
    A_true = sim.abundances.reshape(p, -1)[:, index].T
    t0 = time.perf_counter()
    count = estimate_count(X)
    t_count = time.perf_counter() - t0

    rows = [{"step": "endmember count", "result": f"HFC {count.hfc}, NWHFC {count.nwhfc}, HySime {count.hysime} "
             f"-> p = {count.p} (truth {p})", "time_s": round(t_count, 3)}]
    results = {}
    for name, fn in (("VCA", lambda: vca(X, p, random_state=ctx.seed)),
                     ("AVCA (p auto)", lambda: avca(X, "auto", random_state=ctx.seed)[:2]),
                     ("ATGP", lambda: atgp(X, p)),
                     ("N-FINDR", lambda: nfindr(X, p, random_state=ctx.seed))):
        t0 = time.perf_counter()
        E, idx = fn()
        t_e = time.perf_counter() - t0
        s = sad(sim.endmembers, E)
        t0 = time.perf_counter()
        A = fcls(X, E)
        t_a = time.perf_counter() - t0
        matched = s.perm >= 0
        Am = np.zeros_like(A_true)
        Am[:, matched] = A[:, s.perm[matched]]
        results[name] = (E, A, s)
        rows.append({"step": name, "result": f"{E.shape[0]} endmembers, SAD {s.mean_deg:.2f} deg, "
                     f"abundance RMSE x100 {abundance_rmse(A_true, Am):.2f}, SRE {sre_db(A_true, Am):.1f} dB",
                     "time_s": round(t_e + t_a, 3)})

    # SAD against SNR (VCA), the accuracy claim of the issue
    snr_rows = []
    for snr in ((20.0, 40.0) if ctx.quick else (15.0, 25.0, 35.0, 50.0)):
        s2 = simulate_scene(shape=(40, 40), n_endmembers=p, snr_db=snr, pure_pixels=True, seed=ctx.seed + 1)
        X2, _ = pixels(s2.scene)
        sad_vca = sad(s2.endmembers, vca(X2, p, random_state=0)[0]).mean_deg
        sad_nf = sad(s2.endmembers, nfindr(X2, p)[0]).mean_deg
        snr_rows.append({"SNR_dB": snr, "VCA_SAD_deg": round(sad_vca, 3), "N-FINDR_SAD_deg": round(sad_nf, 3)})

    real = _sim1()
    if real is not None:
        Y, E1, A1 = real
        t0 = time.perf_counter()
        Ah = fcls(Y, E1)
        t_f = time.perf_counter() - t0
        c1 = estimate_count(Y)
        E_v, _, info = avca(Y, "auto", random_state=ctx.seed)
        rows.append({"step": "MiSiCNet sim1 (105x105x224, 6 endmembers)",
                     "result": f"FCLS with true E: RMSE {abundance_rmse(A1, Ah, scale=1):.1e}; count HFC {c1.hfc}, "
                     f"NWHFC {c1.nwhfc}, HySime {c1.hysime}; AVCA p={info['p']}, SAD {sad(E1, E_v).mean_deg:.2f} deg "
                     "(no pure pixels)", "time_s": round(t_f, 3)})

    wl = sim.wavelength
    t0 = time.perf_counter()
    n_aug = 10_000
    Xa, _ = augment_library(sim.endmembers, n_aug, default_augmenter(), wavelength=wl, random_state=ctx.seed)
    t_aug = time.perf_counter() - t0
    rows.append({"step": "library augmentation", "result": f"{n_aug} spectra per class x {p} classes "
                 f"({t_aug / p * 1e3:.0f} ms per class)", "time_s": round(t_aug, 3)})

    # products: the abundance cube of the best extraction, georeferenced like the scene
    E_best, A_best, s_best = results["VCA"]
    ab = from_pixels(A_best.astype(np.float32), index, sim.scene,
                     band_names=[f"vca_{i + 1}" for i in range(E_best.shape[0])], attrs={"units": "abundance"})
    write_scene(ab, folder / "abundances_vca.img", overwrite=True)

    fig1 = spectra_figure(wl, np.vstack([sim.endmembers, E_best[s_best.perm]]),
                          labels=[f"true {n}" for n in sim.names] + [f"VCA {i + 1}" for i in range(p)],
                          title="true endmembers and VCA's (matched)")
    for line in fig1.axes[0].lines[p:]:
        line.set_linestyle("--")
    fig2, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    t3 = np.nan_to_num(sim.abundances[:3].transpose(1, 2, 0))
    est = np.nan_to_num(ab.values[s_best.perm[:3]].transpose(1, 2, 0))
    for a, img, title in ((axes[0], t3, "true abundances (first 3 as RGB)"), (axes[1], est, "FCLS with VCA")):
        a.imshow(np.clip(img, 0, 1), interpolation="nearest")
        a.set_title(title)
        a.set_axis_off()
    fig2.tight_layout()
    fig3 = spectra_figure(wl, Xa[::n_aug // 4][:8], title="augmented spectra (first class, 8 draws)")
    ctx.report.add_section(
        "Unmixing: endmember count, extraction and abundances",
        f"A simulated {shape[0]}x{shape[1]} scene of {p} mineral-like endmembers (SNR 35 dB, one pure pixel per "
        "endmember, 5 % nodata). The count comes from HFC, NWHFC and HySime (all reported; HySime decides); "
        "endmembers are original pixel spectra found by VCA, AVCA (count automatic, 10 seeded restarts, "
        "largest simplex), ATGP and N-FINDR; abundances by exact FCLS over all pixels at once. Metrics follow "
        "HySUPP: SAD in degrees after Hungarian matching, abundance RMSE x100, SRE in dB.",
        figures=[("endmembers", fig1), ("abundances", fig2), ("augmentation", fig3)],
        tables=[("results", rows), ("SAD falls as SNR rises", snr_rows)],
    )
