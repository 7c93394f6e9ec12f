"""Every setting of the CRISM classifier, as one validated pydantic model (no global state)."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field


class CrismSettings(BaseModel):
    """Settings for training and applying the CRISM classifier (all defaults follow crism_ml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kappa0: float = Field(1.0, gt=0, description="HBM global-prior strength")
    kappa1: float = Field(100.0, gt=0, description="HBM local (per-image) prior strength")
    m_extra: float = Field(2.0, gt=1, description="inverse-Wishart dof m = d + m_extra")
    despike_passes: tuple[tuple[int, float], ...] = ((11, 5.0), (7, 5.0), (3, 5.0))
    column_spike_size: int = 3
    column_spike_sigma: float = 5.0
    ratio_half_window: int = Field(49, ge=2)
    ratio_n_bland: int = Field(3, ge=1)
    subsets: str = Field("crism_ml", description="'crism_ml' (4 interleaved + 11 windows) or 'single'")
    heldout_fraction: float = Field(0.3, ge=0.0, lt=1.0, description="images held out to learn weights/T")
    refit_full: bool = Field(True, description="refit the HBMs on all images after learning weights")
    threshold: float = Field(0.5, ge=0, le=1, description="confidence threshold, common classes")
    threshold_rare: float = Field(0.7, ge=0, le=1, description="confidence threshold, rare classes")
    rare_min_images: int = Field(5, ge=1, description="classes in fewer training images are rare")
    ood_quantile: float = Field(0.005, ge=0.0, lt=0.5,
                                description="out-of-distribution rejection: spectra whose best-class log-likelihood "
                                            "(summed over the ensemble) lies below this quantile of held-out "
                                            "training spectra are 'unknown'; 0 disables")
    despike_protect: bool = Field(False, description="despiking replaces only isolated one-band spikes, protecting "
                                                     "narrow absorptions (not crism_ml's method)")
    merge_inseparable: bool = True
    region_min_pixels: int = Field(5, ge=1)
    region_min_columns: int = Field(2, ge=1)
    region_dilation: int = Field(2, ge=0)
    compute_dtype: str = Field("float32", pattern="^(float32|float64)$")
    seed: int = 0

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()
