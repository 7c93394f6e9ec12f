"""Outside-library rejection: materials the libraries do not hold become Unclassified, the scene's own do not."""

from __future__ import annotations

import numpy as np

from orbitml.minmap.data import augment_pools, calibrate_rejection, fit_angle, resample_classes
from orbitml.minmap.manifest import Augment, Patches
from orbitml.simulate.minmap import simulate_minmap
from orbitml.simulate.spectra import mineral_spectrum
from orbitml.spectra.resample import resample_to_bands


def test_fit_angle_threshold_separates_foreign_materials():
    sim = simulate_minmap(["kaolinite", "jarosite", "al_smectite", "mg_carbonate"], shape=(16, 16), seed=2)
    wl, fw = sim.scene.coords["wavelength"].values, sim.scene.coords["fwhm"].values
    spectra, _ = resample_classes(sim.libraries, wl, fw)
    pools = augment_pools(spectra, wl, Augment(n_per_class=100), seed=0)
    E = np.stack([s.mean(0) for s in spectra.values()])
    rej = calibrate_rejection(pools, E, Patches(snr_db=30.0), seed=0)
    thr = rej["max_angle_deg"]
    X = sim.scene.values.reshape(wl.size, -1).T
    inside = fit_angle(X, E)
    assert np.mean(inside > thr) < 0.05, (np.quantile(inside, [0.5, 0.99]), thr)  # the scene's own minerals
    fine = np.arange(350.0, 2551.0, 2.0)
    rng = np.random.default_rng(0)
    # materials with absorptions the classes lack; a spectrally close one (serpentine: 2.12/2.32 um, like
    # kaolinite + Mg carbonate mixtures) is NOT caught by this test, and low-Ca pyroxene only about 3/4 of the time
    for foreign in ("olivine", "h2o_ice"):
        F = resample_to_bands(np.array([mineral_spectrum(foreign, fine, rng=rng) for _ in range(50)]), fine, wl, fw)
        mixed = 0.8 * F + 0.2 * X[:50]  # a foreign material dominating the pixel
        assert np.mean(fit_angle(mixed, E) > thr) > 0.9, foreign
    # scale (illumination) does not change the angle
    np.testing.assert_allclose(fit_angle(1.7 * X[:20], E), inside[:20], atol=1e-6)
