"""The CRISM spectral summary parameter table (Viviano-Beck et al. 2014, JGR Planets 119:1403).

Each parameter is one :class:`ParamDef` row: its name, its formula *form*, the wavelengths (nm)
it reads, the kernel width of each (a kernel = median over that many bands centred on the band
nearest the wavelength), a description of the formula, and what it indicates.  The forms are
evaluated by the vectorised primitives in :mod:`orbitml.crism.params`.

How ``wavelengths`` / ``kernels`` are read for each form (``S``/``C``/``L`` = short shoulder,
centre, long shoulder; continuum = straight line in wavelength between the shoulders)::

    R       (λ,)                          R(λ)
    RATIO   (num, den)                    R(num) / R(den)
    BD      (S, C, L)                     1 - R(C) / continuum(C)
    SH      (S, C, L)                     1 - continuum(C) / R(C)         (shoulder / inverse lever rule)
    MIN     (S1, C1, L1, S2, C2, L2, ..)  element-wise minimum of the band depths
    BDMEAN  (S, L, C1, C2, ..)            mean of 1 - R(Ci)/continuum(Ci), one continuum S-L
    INDEX   (S, L, b1, b2, ..)            sum_i weight_i * (1 - R(bi)/continuum(bi)), continuum S-L
    DROP    (S, L, n1..nk, d1..dm)        1 - mean_i R(ni)/cont(ni) / mean_j R(dj)/cont(dj); k = n_num
    SLOPE   (λ1, λ2)                      (R(λ1) - R(λ2)) / (λ2 - λ1), per micrometre
    RPEAK   (λ1, .., λ11)                 wavelength (µm) of the maximum of a 4th-order polynomial (CAT)
    BDIVIS  (lo, hi, + the RPEAK λs)      integral over the bands lo..hi of 1 - R / R(peak), in µm
    BDI     (lo, hi, a1, a2, b1, b2)      integral over the bands lo..hi of 1 - R / continuum, in µm;
                                          continuum (CAT): 75th percentile of bands a1..a2 at their
                                          median wavelength to the median of bands b1..b2
    VAR     (A, B, lo, hi)                sum over the bands lo..hi of squared residuals about the
                                          line through R(A) and R(B) (CAT)
    BDRATIO (S1, C1, L1, S2, C2, L2)      1 - (1 - BD_1) / (1 - BD_2)
    BD3000  (2210, 2530, 3000)            1 - R3000 / (R2530 * R2530 / R2210)
    BDCARB  (2230, 2320, 2330, 2390, 2520, 2530, 2600)
                                          1 - sqrt(mean(R2320, R2330)/RC * mean(R2520, R2530)/RC) (CAT)
    AREA    (lo, hi)                      integral over bands in [lo, hi] of continuum - R, in µm

Wavelengths are those of the paper's Table 2 (the nominal CRISM band centres rounded to nm);
the computation always uses the band nearest each one and records which band that was.  A
kernel of width k is the median of bands i - k//2 .. i + k//2 (an even k reads k + 1 bands,
centred, as CAT's ``crism_sumutil_single`` does).

Where the CRISM Analysis Toolkit (CAT, ``crism_summary_*.pro``: the code that makes the PDS MTRDR
summary products users compare with) and the paper's table differ, we follow CAT's hyperspectral
branch and give the paper's form in ``note``; ``docs/crism-params.md`` lists every such row.
Parameters whose ``source`` is ``HyPyRameter`` are not in Viviano-Beck 2014; they are needed by browse products of the
HyPyRameter browse table (Phillips et al.) and follow its definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ParamDef", "PARAMETERS", "VB2014", "get_param", "canonical_name"]

VB2014 = "Viviano-Beck et al. 2014"
HYPY = "HyPyRameter (Phillips et al.)"

# CAT's RPEAK1 wavelengths (they avoid the ~660 nm filter boundary and the MTRDR gap at 631-709 nm)
RPEAK_WL = (442.0, 533.0, 600.0, 710.0, 740.0, 775.0, 800.0, 833.0, 860.0, 892.0, 925.0)


@dataclass(frozen=True)
class ParamDef:
    """One row of the parameter table."""

    name: str
    form: str
    wavelengths: tuple[float, ...]
    kernels: tuple[int, ...]
    description: str
    indicates: str
    weights: tuple[float, ...] = ()
    n_num: int = 0
    abs_continuum: bool = False  # INDEX: divide by |RC| (CAT's OLINDEX3)
    units: str = ""
    source: str = VB2014
    note: str = ""

    def __post_init__(self) -> None:
        if len(self.kernels) != len(self.wavelengths):
            raise ValueError(f"{self.name}: {len(self.kernels)} kernels, {len(self.wavelengths)} wavelengths")


def _r(wl: float, k: int, indicates: str, source: str = VB2014, desc: str = "") -> ParamDef:
    return ParamDef(f"R{int(wl)}", "R", (wl,), (k,), desc or f"reflectance at {int(wl)} nm ({k}-band median)",
                    indicates, source=source)


def _bd(name, s, c, l, ks, kc, kl, indicates, source=VB2014, note="") -> ParamDef:
    return ParamDef(name, "BD", (s, c, l), (ks, kc, kl),
                    f"1 - R{int(c)} / (a*R{int(s)} + b*R{int(l)})", indicates, source=source, note=note)


def _sh(name, s, c, l, ks, kc, kl, indicates, note="") -> ParamDef:
    return ParamDef(name, "SH", (s, c, l), (ks, kc, kl),
                    f"1 - (a*R{int(s)} + b*R{int(l)}) / R{int(c)}", indicates, note=note)


def _min(name, triples, kernels, indicates, source=VB2014, note="") -> ParamDef:
    wl = tuple(float(w) for t in triples for w in t)
    parts = ", ".join(f"BD{int(t[1])}[{int(t[0])},{int(t[2])}]" for t in triples)
    return ParamDef(name, "MIN", wl, tuple(kernels), f"min({parts})", indicates, source=source, note=note)


_ROWS: list[ParamDef] = [
    # --- visible / near-IR (S detector) ------------------------------------------------------
    _r(770, 5, "higher value = more dusty or icy surface"),
    ParamDef("RBR", "RATIO", (770.0, 440.0), (5, 5), "R770 / R440 (red/blue ratio)",
             "rock coatings, dust, ferric minerals"),
    _bd("BD530_2", 440, 530, 614, 5, 5, 5, "fine-grained crystalline hematite"),
    _sh("SH600_2", 533, 600, 716, 5, 5, 3, "select ferric minerals (especially hematite)"),
    _sh("SH770", 716, 775, 860, 3, 5, 5, "select ferric minerals (especially jarosite)"),
    _bd("BD640_2", 600, 624, 760, 5, 3, 5, "select ferric minerals (especially maghemite)"),
    _bd("BD860_2", 755, 860, 977, 5, 5, 5, "select ferric minerals (especially hematite)"),
    _bd("BD920_2", 807, 920, 984, 5, 5, 5, "select ferric minerals, low-Ca pyroxene"),
    ParamDef("RPEAK1", "RPEAK", RPEAK_WL, (1,) * len(RPEAK_WL),
             "wavelength of the maximum of a 4th-order polynomial through R442..R925 (11 bands, CAT)",
             "Fe mineralogy", units="um",
             note="CAT's form; the paper: a 5th-order polynomial through R600..R830 (8 bands), which on "
                  "an MTRDR (no bands at 632-709 nm) passes exactly through the 6 left. Refused (NaN) "
                  "when any of the 11 bands is missing"),
    ParamDef("BDI1000VIS", "BDIVIS", (833.0, 1023.0, *RPEAK_WL), (1, 1) + (1,) * len(RPEAK_WL),
             "integral over the bands 833-1023 nm of 1 - R / R(RPEAK1), R(RPEAK1) from the RPEAK1 polynomial",
             "olivine, pyroxene, Fe-bearing glass", units="um",
             note="inherits RPEAK1's CAT form (4th order, 11 bands)"),
    _r(440, 5, "clouds / hazes"),
    ParamDef("IRR1", "RATIO", (800.0, 997.0), (5, 5), "R800 / R997 (IR ratio 1)",
             "aphelion ice clouds (>1) versus seasonal ices or dust (<1)"),
    # --- near-IR (L detector) ----------------------------------------------------------------
    ParamDef("BDI1000IR", "BDI", (1020.0, 1255.0, 1330.0, 1875.0, 2430.0, 2600.0), (1,) * 6,
             "integral over the bands 1020-1255 nm of 1 - R / continuum; continuum from the 75th percentile "
             "of 1330-1875 nm (at its median wavelength) to the median of 2430-2600 nm",
             "crystalline Fe2+ or Fe3+ minerals", units="um",
             note="CAT's form (crism_sumutil_bdicont); the paper's table: integration 1045-1255 nm against a "
                  "continuum from the reflectance peak in 1300-1870 nm to R2430"),
    ParamDef("OLINDEX3", "INDEX", (1750.0, 1862.0, 1210.0, 1250.0, 1263.0, 1276.0, 1330.0), (7,) * 7,
             "sum w_i*(RC_i - R_i)/|RC_i| at 1210, 1250, 1263, 1276, 1330 nm, continuum R1750-R1862",
             "olivine (strongly > 0); also HCP, Fe-phyllosilicates",
             weights=(0.1, 0.1, 0.2, 0.2, 0.4), abs_continuum=True,
             note="CAT's OLINDEX3 (and Viviano-Beck 2014's); the 11-term form RB1080..RB1470 against "
                  "R1750-R2400 with weights 0.03..0.18 is OLINDEX2 (Salvatore et al. 2010)"),
    _r(1330, 11, "IR albedo (ices > dust > unaltered mafics)"),
    _bd("BD1300", 1080, 1320, 1750, 5, 15, 5, "plagioclase with Fe2+ substitution"),
    ParamDef("LCPINDEX2", "INDEX", (1560.0, 2450.0, 1690.0, 1750.0, 1810.0, 1870.0), (7,) * 6,
             "sum w_i*RB_i at 1690, 1750, 1810, 1870 nm, continuum R1560-R2450",
             "pyroxene, favouring low-Ca pyroxene", weights=(0.2, 0.2, 0.3, 0.3)),
    ParamDef("HCPINDEX2", "INDEX", (1690.0, 2530.0, 2120.0, 2140.0, 2230.0, 2250.0, 2430.0, 2460.0),
             (7, 7, 5, 7, 7, 7, 7, 7),
             "sum w_i*RB_i at 2120..2460 nm, continuum R1690-R2530",
             "pyroxene, favouring high-Ca pyroxene", weights=(0.1, 0.1, 0.15, 0.3, 0.2, 0.15)),
    ParamDef("VAR", "VAR", (1014.0, 2287.0, 1021.0, 2253.0), (1,) * 4,
             "sum over the bands 1021-2253 nm of squared residuals about the line through R1014 and R2287",
             "olivine and pyroxene (high spectral variance)",
             note="CAT's form; the paper's table: a least-squares line over 1021-2287 nm"),
    ParamDef("ISLOPE1", "SLOPE", (1815.0, 2530.0), (5, 5), "(R1815 - R2530) / (W2530 - W1815), per µm",
             "ferric coating on dark rock", units="1/um"),
    _bd("BD1400", 1330, 1395, 1467, 5, 3, 5, "H2O, OH"),
    _bd("BD1435", 1370, 1435, 1470, 3, 1, 3, "CO2 surface ice"),
    _bd("BD1500_2", 1367, 1525, 1808, 5, 11, 5, "H2O surface ice"),
    ParamDef("ICER1_2", "BDRATIO", (1370.0, 1435.0, 1470.0, 1367.0, 1525.0, 1808.0), (3, 1, 3, 5, 11, 5),
             "1 - (1 - BD1435) / (1 - BD1500_2)", "CO2 and H2O ice mixtures"),
    _bd("BD1750_2", 1690, 1750, 1815, 5, 3, 5, "alunite, gypsum"),
    ParamDef("BD1900_2", "BD", (1850.0, 1930.0, 2067.0), (5, 5, 5),
             "1 - R1930 / (a*R1850 + b*R2067)", "H2O, chemically bound or adsorbed",
             note="CAT's hyperspectral branch; the paper (and CAT's multispectral branch): "
                  "0.5*(1 - R1930/RC) + 0.5*(1 - R1985/RC), continuum R1850-R2067"),
    ParamDef("BD1900r2", "DROP",
             (1815.0, 2132.0, 1908.0, 1914.0, 1921.0, 1928.0, 1934.0, 1941.0, 1862.0, 1869.0, 1875.0,
              2112.0, 2120.0, 2126.0), (5, 5) + (1,) * 12,
             "1 - sum(R/RC at 1908..1941) / sum(R/RC at 1862..1875, 2112..2126), continuum R1815-R2132",
             "H2O, chemically bound or adsorbed", n_num=6,
             note="CAT's continuum anchors (1815, 2132 nm; also HyPyRameter's); the paper's table "
                  "anchors at 1850 and 2060 nm"),
    ParamDef("BDI2000", "BDI", (1660.0, 2390.0, 1330.0, 1875.0, 2430.0, 2600.0), (1,) * 6,
             "integral over the bands 1660-2390 nm of 1 - R / continuum; continuum as BDI1000IR",
             "pyroxene abundance and particle size", units="um",
             note="CAT's form; the paper's table: continuum from the reflectance peak in 1300-1870 nm "
                  "to R2530"),
    _bd("BD2100_2", 1930, 2132, 2250, 3, 5, 3, "monohydrated minerals"),
    _bd("BD2165", 2120, 2165, 2230, 5, 3, 3, "kaolinite group"),
    _bd("BD2190", 2120, 2185, 2250, 5, 3, 3, "beidellite, allophane"),
    _min("MIN2200", ((2120, 2165, 2350), (2120, 2210, 2350)), (5, 3, 5, 5, 3, 5), "kaolinite group"),
    _bd("BD2210_2", 2165, 2210, 2290, 5, 5, 5, "Al-OH minerals"),
    ParamDef("D2200", "DROP", (1815.0, 2430.0, 2210.0, 2230.0, 2165.0), (7, 7, 7, 7, 5),
             "1 - (R2210/RC2210 + R2230/RC2230) / (2 * R2165/RC2165), continuum R1815-R2430",
             "Al-OH minerals", n_num=2),
    _bd("BD2230", 2210, 2235, 2252, 3, 3, 3, "hydroxylated ferric sulfate"),
    _bd("BD2250", 2120, 2245, 2340, 5, 7, 3, "opal and other Al-OH minerals"),
    _min("MIN2250", ((2165, 2210, 2350), (2165, 2265, 2350)), (5, 3, 5, 5, 3, 5), "opal"),
    _bd("BD2265", 2210, 2265, 2340, 5, 3, 5, "jarosite, gibbsite, acid-leached nontronite"),
    _bd("BD2290", 2250, 2290, 2350, 5, 5, 5, "Mg,Fe-OH minerals (2.3 µm); also CO2 ice (2.29 µm)"),
    ParamDef("D2300", "DROP", (1815.0, 2530.0, 2290.0, 2320.0, 2330.0, 2120.0, 2170.0, 2210.0),
             (5, 5, 3, 3, 3, 5, 5, 5),
             "1 - sum(R/RC at 2290, 2320, 2330) / sum(R/RC at 2120, 2170, 2210), continuum R1815-R2530",
             "hydroxylated Fe,Mg silicates; also Mg-carbonates and CO2 ice", n_num=3),
    _bd("BD2355", 2300, 2355, 2450, 5, 5, 5, "chlorite, prehnite, pumpellyite"),
    _sh("SINDEX2", 2120, 2290, 2400, 5, 7, 3, "hydrated sulfates (mono and polyhydrated)"),
    _bd("ICER2_2", 2456, 2600, 2530, 5, 5, 5, "CO2 ice (2.6 µm), continuum extrapolated from R2456-R2530",
        note="uncertain: centre lies outside the shoulders (extrapolated continuum), as in the CAT code"),
    _min("MIN2295_2480", ((2165, 2295, 2364), (2364, 2480, 2570)), (5,) * 6, "Mg carbonates"),
    _min("MIN2345_2537", ((2250, 2345, 2430), (2430, 2537, 2602)), (5,) * 6, "ferrous or Ca carbonates"),
    _bd("BD2500_2", 2364, 2480, 2570, 5, 5, 5, "Mg carbonates"),
    ParamDef("BD3000", "BD3000", (2210.0, 2530.0, 3000.0), (5, 5, 5), "1 - R3000 / (R2530 * (R2530 / R2210))",
             "H2O, chemically bound or adsorbed"),
    _bd("BD3100", 3000, 3120, 3250, 5, 5, 5, "H2O ice"),
    _bd("BD3200", 3250, 3320, 3390, 5, 5, 5, "CO2 ice"),
    _bd("BD3400_2", 3250, 3420, 3630, 10, 15, 10, "carbonates, organics"),
    _sh("CINDEX2", 3450, 3610, 3875, 9, 11, 7, "carbonates (3.6 µm convexity between 3.4 and 3.9 µm bands)"),
    _bd("BD2600", 2530, 2600, 2630, 5, 5, 5, "H2O (steep slope unlike BD2500)"),
    ParamDef("IRR2", "RATIO", (2530.0, 2210.0), (5, 5), "R2530 / R2210 (IR ratio 2)",
             "aphelion ice clouds versus seasonal ices or dust"),
    ParamDef("IRR3", "RATIO", (3500.0, 3390.0), (7, 7), "R3500 / R3390 (IR ratio 3)",
             "CO2 ice (3.39 µm band)"),
    _r(530, 5, "true-colour green"),
    _r(600, 5, "true-colour red"),
    _r(1080, 5, "IR false colour (blue)"),
    _r(1300, 5, "1300 nm reflectance (not IRA: IRA is R1330 in Viviano-Beck 2014 and CAT)"),
    _r(1506, 5, "IR false colour (green)"),
    _r(2529, 5, "IR false colour (red)"),
    _r(3920, 5, "IR albedo (ices > dust > unaltered mafics)"),
    # --- parameters of the HyPyRameter browse table (not in Viviano-Beck 2014) ----------------
    ParamDef("BDCARB", "BDCARB", (2230.0, 2320.0, 2330.0, 2390.0, 2520.0, 2530.0, 2600.0), (5,) * 7,
             "1 - sqrt(mean(R2320, R2330)/RC[2230,2390] * mean(R2520, R2530)/RC[2390,2600]), "
             "continua at the mean centre wavelengths", "carbonates (2.3 + 2.5 µm bands)",
             source="Pelkey et al. 2007 / CAT",
             note="CAT's form since its 2011-12 fix (kernel 5, CAT's default); Pelkey 2007: single "
                  "centres at 2330 and 2530 nm"),
    _bd("BD670", 620, 670, 745, 5, 5, 5, "hematite, chlorophyll (670 nm)", source=HYPY),
    _bd("BD875", 747, 875, 980, 5, 5, 5, "ferric minerals (875 nm)", source=HYPY),
    _bd("BD905", 750, 905, 1300, 5, 5, 5, "ferric minerals, pyroxene (905 nm)", source=HYPY),
    _bd("BD1200", 1115, 1200, 1260, 5, 5, 5, "1200 nm band (olivine, plagioclase, Fe2+ minerals)",
        source=HYPY),
    _bd("BD1450", 1340, 1450, 1535, 5, 3, 5, "hydration (1450 nm)", source=HYPY),
    _bd("BD2100_3", 2016, 2100, 2220, 5, 5, 5, "2100 nm band (monohydrated sulfates)", source=HYPY),
    ParamDef("D700", "DROP", (630.0, 830.0, 690.0, 710.0, 720.0, 740.0, 760.0, 770.0),
             (5, 5, 3, 3, 3, 5, 5, 5),
             "1 - sum(R/RC at 690, 710, 720) / sum(R/RC at 740, 760, 770), continuum R630-R830",
             "chlorophyll red edge (biology)", n_num=3, source=HYPY),
    _min("GINDEX", ((1440, 1447, 1476), (1476, 1491, 1515), (1515, 1540, 1570)), (1,) * 9,
         "gypsum (1447, 1491, 1540 nm triplet)", source=HYPY),
    ParamDef("BA1200", "AREA", (1115.0, 1260.0), (5, 5), "band area 1115-1260 nm above the spectrum",
             "1200 nm absorption", units="um", source=HYPY,
             note="trapezoid integral in µm (HyPyRameter uses a spline)"),
    ParamDef("BA1450", "AREA", (1340.0, 1535.0), (5, 5), "band area 1340-1535 nm above the spectrum",
             "hydration (1450 nm)", units="um", source=HYPY, note="trapezoid integral in µm"),
    ParamDef("BA1900", "AREA", (1850.0, 2067.0), (5, 5), "band area 1850-2067 nm above the spectrum",
             "hydration (1900 nm)", units="um", source=HYPY, note="trapezoid integral in µm"),
    _r(463, 5, "true-colour blue (HyPyRameter TRU)", source=HYPY),
    _r(550, 5, "true-colour green (HyPyRameter TRU)", source=HYPY),
    _r(637, 5, "true-colour red (HyPyRameter TRU)", source=HYPY),
]

PARAMETERS: dict[str, ParamDef] = {p.name: p for p in _ROWS}
_BY_UPPER = {k.upper(): k for k in PARAMETERS}


def canonical_name(name: str) -> str | None:
    """The table's spelling of ``name`` (case-insensitive: ``BD1900R2`` -> ``BD1900r2``), or None."""
    return _BY_UPPER.get(str(name).strip().upper())


def get_param(name: str) -> ParamDef:
    key = canonical_name(name)
    if key is None:
        raise KeyError(name)
    return PARAMETERS[key]
