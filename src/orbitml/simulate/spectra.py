"""Parametric mineral-like reflectance spectra.

Model (Gaussian absorptions in *wavelength*, multiplied onto a straight continuum)::

    R(lambda) = C(lambda) * prod_k (1 - d_k * exp(-(lambda - c_k)^2 / (2 s_k^2)))
    C(lambda) = level + slope * (lambda - 1.5 um)            (slope per micrometre)

with band centres ``c_k``, widths ``s_k = fwhm_k / (2 sqrt(2 ln 2))`` and depths ``d_k`` in
[0, 1).  The continuum-removed spectrum R / C at an isolated band's centre is exactly
``1 - d_k``, so the band depth (Clark & Roush 1984: 1 - R_band / R_continuum) of every simulated
band is known exactly.  These are stand-ins with the right band positions for testing
algorithms, not radiative-transfer models: shapes are Gaussian, real bands are not.

Band centres (micrometres) and their sources:

* CRISM spectral library / MICA type spectra, Viviano-Beck et al. 2014 (JGR Planets 119,
  1403-1431): Fe/Mg smectite (~1.42, 1.91, 2.29-2.31), Al smectite (1.41, 1.91, 2.21), kaolinite
  (doublets 1.395/1.415 and 2.165/2.205), polyhydrated sulfate (1.44, 1.94, 2.42 drop),
  monohydrated sulfate (2.13, 2.4), jarosite (1.47, 1.85, 2.265), Mg carbonate (2.30, 2.50),
  hydrated silica (1.41, 1.91, broad 2.21-2.26), serpentine (2.12, 2.32), chlorite (2.25, 2.34),
  prehnite (1.48, 2.35), hematite (0.86), CO2 and H2O ice.
* Clark et al. 1990 (JGR 95, 12653): Al-OH and Mg-OH combination bands of clays and the kaolinite
  doublets.  Ehlmann et al. 2009 (JGR 114, E00D08): Fe/Mg smectite, chlorite, prehnite,
  serpentine, Mg carbonate.  Milliken et al. 2008 (Geology 36, 847): hydrated silica.
* Adams 1974 (JGR 79, 4829) and Cloutis & Gaffey 1991: low-Ca pyroxene 0.90-0.93 / 1.80-2.00 um,
  high-Ca pyroxene 1.00-1.05 / 2.20-2.35 um.  Burns 1993 and Sunshine & Pieters 1998: olivine's
  composite 1.05 um band (three Fe2+ bands near 0.85, 1.05, 1.25 um).  Adams & Goullaud 1978:
  plagioclase Fe2+ band near 1.25 um.  Morris et al. 1985: hematite Fe3+ band near 0.86 um.
* Ices: H2O ice 1.04, 1.25, 1.50, 2.02 um (Clark 1981; Grundy & Schmitt 1998); CO2 ice 1.435 and
  2.281 um (Hansen 1997; Langevin et al. 2005).
Widths and depths are typical values chosen for plausible-looking spectra, not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError

__all__ = [
    "Family",
    "FAMILIES",
    "REFERENCE_UM",
    "family_params",
    "absorption_spectrum",
    "mineral_spectrum",
    "library_from_families",
    "families_in_range",
]

REFERENCE_UM = 1.5  # the continuum level is the reflectance at this wavelength
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class Family:
    """One mineral family: band centres, FWHM (um), depths (0-1) and a default continuum."""

    name: str
    centres_um: tuple[float, ...]
    fwhm_um: tuple[float, ...]
    depths: tuple[float, ...]
    continuum: tuple[float, float]  # (level at 1.5 um, slope per um)
    description: str


def _f(name, centres, fwhm, depths, continuum, description):
    return Family(name, tuple(centres), tuple(fwhm), tuple(depths), tuple(continuum), description)


# name, centres (um), FWHM (um), depths, (continuum level, slope per um), what
_TABLE = [
    # Viviano-Beck 2014; Ehlmann 2009: Fe-OH ~2.29 (nontronite) to Mg-OH ~2.31 (saponite); 1.42, 1.91 H2O/OH
    _f(
        "fe_mg_smectite",
        (1.42, 1.91, 2.30, 2.39),
        (0.04, 0.07, 0.05, 0.05),
        (0.08, 0.15, 0.12, 0.05),
        (0.30, 0.02),
        "Fe/Mg smectite (nontronite, saponite)",
    ),
    # Viviano-Beck 2014; Clark 1990: Al-OH at 2.21
    _f(
        "al_smectite",
        (1.41, 1.91, 2.21),
        (0.04, 0.07, 0.045),
        (0.08, 0.18, 0.14),
        (0.40, 0.0),
        "Al smectite (montmorillonite)",
    ),
    # Clark 1990: OH doublets 1.395/1.415 and 2.165/2.205
    _f(
        "kaolinite",
        (1.395, 1.415, 2.165, 2.205),
        (0.015, 0.02, 0.03, 0.03),
        (0.10, 0.12, 0.12, 0.18),
        (0.50, -0.02),
        "kaolin group (kaolinite)",
    ),
    # Viviano-Beck 2014: polyhydrated sulfate 1.44, 1.94, 2.4 drop-off
    _f(
        "polyhydrated_sulfate",
        (1.44, 1.94, 2.42),
        (0.06, 0.08, 0.12),
        (0.12, 0.25, 0.15),
        (0.35, -0.03),
        "polyhydrated (Mg) sulfate",
    ),
    # Viviano-Beck 2014: monohydrated sulfate (kieserite, szomolnokite) 2.1 band and 2.4 drop-off
    _f(
        "monohydrated_sulfate",
        (1.60, 2.13, 2.40),
        (0.10, 0.08, 0.10),
        (0.06, 0.14, 0.10),
        (0.35, -0.02),
        "monohydrated sulfate (kieserite)",
    ),
    # Viviano-Beck 2014; Bishop & Murad 2005: jarosite 1.47, 1.85, 2.265
    _f("jarosite", (1.47, 1.85, 2.265), (0.03, 0.04, 0.03), (0.10, 0.08, 0.15), (0.35, 0.0), "jarosite"),
    # Ehlmann et al. 2008 (Science); Viviano-Beck 2014: Mg carbonate 2.30 and 2.50
    _f("mg_carbonate", (2.30, 2.50), (0.06, 0.07), (0.10, 0.16), (0.40, 0.0), "Mg carbonate (magnesite)"),
    # Burns 1993; Sunshine & Pieters 1998: olivine composite band 0.85 / 1.05 / 1.25
    _f(
        "olivine",
        (0.85, 1.05, 1.25),
        (0.16, 0.20, 0.25),
        (0.10, 0.25, 0.20),
        (0.25, 0.05),
        "olivine (broad composite 1.05 um band)",
    ),
    # Adams 1974; Cloutis & Gaffey 1991: LCP 0.90-0.93 and 1.8-2.0
    _f(
        "low_ca_pyroxene",
        (0.91, 1.90),
        (0.16, 0.40),
        (0.25, 0.18),
        (0.22, 0.02),
        "low-Ca pyroxene (orthopyroxene)",
    ),
    # Adams 1974; Cloutis & Gaffey 1991: HCP 1.00-1.05 and 2.2-2.35
    _f(
        "high_ca_pyroxene",
        (1.03, 2.30),
        (0.20, 0.45),
        (0.22, 0.15),
        (0.20, 0.02),
        "high-Ca pyroxene (augite)",
    ),
    # Milliken et al. 2008: 1.41, 1.91 and the broad Si-OH 2.21-2.26 band
    _f(
        "hydrated_silica",
        (1.41, 1.91, 2.235),
        (0.06, 0.08, 0.10),
        (0.10, 0.20, 0.15),
        (0.40, 0.0),
        "hydrated silica (opal)",
    ),
    # Clark 1981; Grundy & Schmitt 1998: 1.04, 1.25, 1.50, 2.02
    _f(
        "h2o_ice",
        (1.04, 1.25, 1.50, 2.02),
        (0.05, 0.07, 0.18, 0.22),
        (0.08, 0.12, 0.45, 0.60),
        (0.70, -0.10),
        "H2O ice",
    ),
    # Hansen 1997; Langevin et al. 2005: CO2 ice 1.435 and 2.281
    _f("co2_ice", (1.435, 2.281), (0.012, 0.012), (0.30, 0.35), (0.75, -0.05), "CO2 ice"),
    # Morris et al. 1985; Viviano-Beck 2014: hematite crystalline Fe3+ band 0.86
    _f("hematite", (0.86,), (0.15,), (0.30,), (0.25, 0.03), "hematite (crystalline Fe oxide)"),
    # Adams & Goullaud 1978: plagioclase Fe2+ band near 1.25
    _f("plagioclase", (1.25,), (0.30,), (0.10,), (0.45, 0.0), "Fe-bearing plagioclase"),
    # Ehlmann et al. 2010 (GRL); Viviano-Beck 2014: serpentine 1.39, 2.12, 2.32
    _f("serpentine", (1.39, 2.12, 2.32), (0.03, 0.05, 0.05), (0.08, 0.06, 0.16), (0.35, 0.01), "serpentine"),
    # Ehlmann et al. 2009; Viviano-Beck 2014: chlorite 2.25 and 2.34
    _f("chlorite", (2.25, 2.34), (0.05, 0.06), (0.08, 0.14), (0.30, 0.0), "chlorite"),
    # Ehlmann et al. 2009: prehnite 1.48 and 2.35
    _f("prehnite", (1.48, 2.35), (0.03, 0.05), (0.10, 0.14), (0.35, 0.0), "prehnite"),
]

FAMILIES: dict[str, Family] = {f.name: f for f in _TABLE}


def _family(name: str | Family) -> Family:
    if isinstance(name, Family):
        return name
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in FAMILIES:
        raise OrbitmlInputError(f"unknown mineral family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[key]


def families_in_range(lo_nm: float, hi_nm: float) -> list[str]:
    """Families with at least one band centre inside [lo_nm, hi_nm]."""
    return [n for n, f in FAMILIES.items() if any(lo_nm <= 1000 * c <= hi_nm for c in f.centres_um)]


def family_params(
    family: str | Family,
    *,
    depth_scale: float = 1.0,
    continuum: tuple[float, float] | None = None,
    rng: np.random.Generator | None = None,
    jitter: float = 1.0,
) -> dict[str, Any]:
    """The exact parameters of one spectrum of ``family`` (jittered when ``rng`` is given).

    Jitter (scaled by ``jitter``): centres +- N(0, 0.004 um), depths x exp(N(0, 0.2)),
    continuum level x U(0.8, 1.2) and slope + N(0, 0.02) per um.
    """
    fam = _family(family)
    centres = np.array(fam.centres_um, dtype=float)
    fwhm = np.array(fam.fwhm_um, dtype=float)
    depths = np.array(fam.depths, dtype=float) * float(depth_scale)
    level, slope = fam.continuum if continuum is None else continuum
    if rng is not None and jitter > 0:
        centres = centres + rng.normal(0.0, 0.004 * jitter, centres.size)
        depths = depths * np.exp(rng.normal(0.0, 0.2 * jitter, depths.size))
        level = level * rng.uniform(1 - 0.2 * jitter, 1 + 0.2 * jitter)
        slope = slope + rng.normal(0.0, 0.02 * jitter)
    depths = np.minimum(depths, 0.95)
    if np.any(depths < 0):
        raise OrbitmlInputError(f"band depths must be >= 0 (depth_scale={depth_scale})")
    return {
        "family": fam.name,
        "centres_um": centres.tolist(),
        "fwhm_um": fwhm.tolist(),
        "depths": depths.tolist(),
        "continuum": (float(level), float(slope)),
    }


def absorption_spectrum(
    wavelength_nm: Any, params: dict[str, Any], *, with_continuum: bool = True
) -> np.ndarray:
    """Render ``params`` (from :func:`family_params`) on ``wavelength_nm``; float64."""
    lam = np.asarray(wavelength_nm, dtype=np.float64) / 1000.0
    r = np.ones_like(lam)
    for c, fw, d in zip(params["centres_um"], params["fwhm_um"], params["depths"], strict=True):
        s = fw * _FWHM_TO_SIGMA
        r *= 1.0 - d * np.exp(-0.5 * ((lam - c) / s) ** 2)
    if not with_continuum:
        return r
    level, slope = params["continuum"]
    cont = level + slope * (lam - REFERENCE_UM)
    if np.any(cont <= 0):
        raise OrbitmlInputError(
            f"continuum (level {level}, slope {slope}/um) falls to <= 0 inside "
            f"{lam.min() * 1000:.0f}-{lam.max() * 1000:.0f} nm; use a smaller slope"
        )
    return cont * r


def mineral_spectrum(
    family: str | Family,
    wavelength_nm: Any,
    *,
    depth_scale: float = 1.0,
    continuum: tuple[float, float] | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Reflectance of one ``family`` member on ``wavelength_nm`` (float64, same shape).

    ``continuum=(level, slope)``: reflectance at 1.5 um and slope per um (default: the family's).
    ``rng`` adds the per-variant jitter of :func:`family_params`.
    """
    return absorption_spectrum(
        wavelength_nm, family_params(family, depth_scale=depth_scale, continuum=continuum, rng=rng)
    )


def library_from_families(
    wavelength_nm: Any,
    families: list[str] | None = None,
    variants: int = 1,
    seed: int | None = 0,
    *,
    jitter: float = 1.0,
):
    """A :class:`~orbitml.spectra.SpectralLibrary` of ``variants`` spectra per family.

    Variant 0 of each family has the table's exact parameters; the others are jittered (seeded).
    ``metadata["params"]`` holds each spectrum's exact parameters, ``metadata["family"]`` its family.
    """
    from orbitml.spectra.library import SpectralLibrary

    if variants < 1:
        raise OrbitmlInputError(f"variants must be >= 1, got {variants}")
    wl = np.asarray(wavelength_nm, dtype=np.float64).ravel()
    names_in = list(FAMILIES) if families is None else [_family(f).name for f in families]
    rng = np.random.default_rng(seed)
    spectra, names, params = [], [], []
    for fam in names_in:
        for v in range(variants):
            p = family_params(fam, rng=rng if v > 0 else None, jitter=jitter)
            spectra.append(absorption_spectrum(wl, p))
            names.append(fam if variants == 1 else f"{fam}_{v}")
            params.append(p)
    meta = {"format": "simulated", "params": params, "family": [p["family"] for p in params], "seed": seed}
    return SpectralLibrary(np.array(spectra), wl, names, None, meta)
