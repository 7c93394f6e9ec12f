"""Synthetic data with known ground truth: mineral-like spectra and linearly mixed scenes.

(CCD frames with cosmic rays live in ``orbitml.simulate.ccd``; import that module directly.)
"""

from orbitml.simulate.scene import (
    CRISM_LIKE_STEP_NM,
    SimulatedScene,
    crism_like_wavelengths,
    simulate_scene,
    smooth_simplex,
)
from orbitml.simulate.spectra import (
    FAMILIES,
    Family,
    absorption_spectrum,
    families_in_range,
    family_params,
    library_from_families,
    mineral_spectrum,
)

__all__ = [
    "FAMILIES",
    "Family",
    "family_params",
    "absorption_spectrum",
    "mineral_spectrum",
    "library_from_families",
    "families_in_range",
    "CRISM_LIKE_STEP_NM",
    "crism_like_wavelengths",
    "SimulatedScene",
    "simulate_scene",
    "smooth_simplex",
]
