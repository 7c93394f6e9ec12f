"""Benchmark: orbitml.spectra.resample_to_bands against SPy's BandResampler (the anchor).

Task: convolve a spectral library (the real USGS splib07 AVIRIS-95 library when ../shared/data is
present, else a simulated one of the same size) to CRISM-like bands (1000-2598 nm every 6.55 nm,
FWHM 10 nm), building the resampling matrix and applying it to every spectrum.

Also accuracy: resample a Gaussian absorption, sampled on (a) a 1 nm grid and (b) a coarse 10 nm
grid, to narrow CRISM-like bands, and compare with the analytic convolution (a Gaussian band
convolved with a Gaussian response is a Gaussian whose variances add).  SPy assumes each source
band is a box of constant value; orbitml integrates the piecewise-linear source exactly.

Run:  .venv/bin/python benchmarks/bench_resample.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from orbitml.simulate import crism_like_wavelengths, library_from_families
from orbitml.spectra import read_library, resample_to_bands

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SIG = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from spectral import BandResampler

    repeats = 3 if args.quick else 10
    sli = SHARED / "hsi/envi/s07_AV95_envi.sli"
    if sli.exists():
        lib = read_library(sli)
        what = f"USGS splib07 AV95 ({len(lib)} spectra x {lib.n_bands} bands)"
    else:
        lib = library_from_families(np.linspace(383.0, 2508.0, 224), variants=137, seed=0)
        what = f"simulated library ({len(lib)} x {lib.n_bands})"
    X = np.nan_to_num(lib.spectra.astype(np.float64), nan=0.0)  # SPy has no NaN handling: compare on filled data
    dst = crism_like_wavelengths()
    dst = dst[dst <= lib.wavelength[-1]]
    fw = np.full(dst.size, 10.0)

    t_ours, ours = best_of(lambda: resample_to_bands(X, lib.wavelength, dst, fw), repeats)

    def spy():
        r = BandResampler(lib.wavelength, dst, lib.fwhm, fw)
        return np.dot(X, r.matrix.T)

    t_spy, theirs = best_of(spy, repeats)
    print(f"speed: {what} -> {dst.size} CRISM-like bands, matrix build + apply, best of {repeats}")
    print(f"  orbitml resample_to_bands : {t_ours * 1e3:8.2f} ms")
    print(f"  SPy BandResampler (anchor): {t_spy * 1e3:8.2f} ms")
    print(f"  ratio anchor / orbitml    : {t_spy / t_ours:8.2f}x  (>1 = orbitml faster)")
    print(f"  median |orbitml - SPy| on the library: {np.nanmedian(np.abs(ours - theirs)):.2e} reflectance")

    print("accuracy vs the analytic convolution of a Gaussian absorption (depth 0.4, sigma 15 nm at 2000 nm):")
    c, w, d = 2000.0, 15.0, 0.4
    centres = np.arange(1950.0, 2050.0, 6.55)
    fwhm = np.full(centres.size, 7.0)
    s = fwhm * SIG
    exact = 1 - d * w / np.sqrt(w**2 + s**2) * np.exp(-0.5 * (centres - c) ** 2 / (w**2 + s**2))
    for step in (1.0, 10.0):
        src = np.arange(1000.0, 2600.0 + step / 2, step)
        spec = 1 - d * np.exp(-0.5 * ((src - c) / w) ** 2)
        e_ours = np.max(np.abs(resample_to_bands(spec, src, centres, fwhm) - exact))
        e_spy = np.nanmax(np.abs(BandResampler(src, centres, np.full(src.size, step), fwhm)(spec) - exact))
        print(
            f"  source every {step:4.1f} nm: max error orbitml {e_ours:.2e}, SPy {e_spy:.2e} "
            f"(ratio SPy / orbitml {e_spy / e_ours:.1f})"
        )


if __name__ == "__main__":
    main()
