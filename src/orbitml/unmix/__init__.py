"""Linear unmixing: endmember count, endmember extraction, abundances and metrics.

All functions take ``(n_pixels, n_bands)`` arrays (or scenes, whose nodata mask is honoured),
are numpy/scipy only and seeded through ``random_state``.
"""

from orbitml.unmix.abundance import AbundanceEstimator, fcls, kkt_violation, nnls, ucls
from orbitml.unmix.count import CountEstimate, estimate_count, estimate_noise, hfc, hysime, nwhfc
from orbitml.unmix.extract import EndmemberExtractor, VCAInfo, atgp, avca, nfindr, simplex_volume, vca
from orbitml.unmix.library import LibraryUnmixing, bundle_abundances, prepare_library, unmix_library
from orbitml.unmix.metrics import SADResult, abundance_rmse, match_endmembers, sad, sad_matrix, sre_db
from orbitml.unmix.sparse import clsunsal, lambda_rule, sunsal

__all__ = [
    "AbundanceEstimator", "CountEstimate", "EndmemberExtractor", "LibraryUnmixing", "SADResult", "VCAInfo",
    "bundle_abundances", "clsunsal", "lambda_rule", "prepare_library", "sunsal", "unmix_library",
    "abundance_rmse", "atgp", "avca", "estimate_count", "estimate_noise", "fcls", "hfc", "hysime",
    "kkt_violation", "match_endmembers", "nfindr", "nnls", "nwhfc", "sad", "sad_matrix", "simplex_volume",
    "sre_db", "ucls", "vca",
]
