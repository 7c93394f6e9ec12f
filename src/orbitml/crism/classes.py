"""The crism_ml class table: 40 codes, names, broad classes, training aliases and rare classes.

Codes and names follow the CRISM Machine Learning Toolkit (Plebani et al., Icarus 2022).  One
table holds everything; the rest of the package reads it through the helpers below.

* ``train_as``: classes that crism_ml could not separate in the laboratory/training data are
  trained as one class (halloysite -> kaolinite, epsomite -> rosenite/polyhydrated sulfate,
  margarite -> illite, clinochlore -> chlorite, opal 2 -> opal 1, fayalite -> forsterite):
  40 codes -> 34, of which 33 occur in the labelled data set (plagioclase, 40, does not).
* ``merge_as``: after prediction, spectrally inseparable classes are merged for reporting
  (montmorillonite -> beidellite as Al smectite, Mg-Cl salt -> polyhydrated sulfate,
  chloride -> hematite as "nondiagnostic").
* ``rare``: classes seen in fewer than five training images in crism_ml's data; they need the
  higher confidence threshold (0.7 instead of 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CrismClass:
    code: int
    name: str
    broad: str
    family: str
    train_as: int
    merge_as: int
    rare: bool


# code, name, broad class, family, trained as, merged as (reporting), rare
_ROWS = [
    (1, "CO2 ice", "CO2 ice", "ice", 1, 1, True),
    (2, "H2O ice", "H2O ice", "ice", 2, 2, True),
    (3, "Gypsum", "Gypsum", "sulfate", 3, 3, True),
    (4, "Ferric hydroxysulfate", "Ferric hydroxysulfate", "sulfate", 4, 4, True),
    (5, "Hematite", "Nondiagnostic", "oxide", 5, 5, False),
    (6, "Nontronite", "Fe smectite", "phyllosilicate", 6, 6, False),
    (7, "Saponite", "Mg smectite", "phyllosilicate", 7, 7, False),
    (8, "Prehnite", "Prehnite", "silicate", 8, 8, False),
    (9, "Jarosite", "Jarosite", "sulfate", 9, 9, False),
    (10, "Serpentine", "Serpentine", "phyllosilicate", 10, 10, True),
    (11, "Alunite", "Alunite", "sulfate", 11, 11, False),
    (12, "Akaganeite", "Akaganeite", "oxide", 12, 12, True),
    (13, "Ca/Fe carbonate", "Ca/Fe carbonate", "carbonate", 13, 13, False),
    (14, "Beidellite", "Al smectite", "phyllosilicate", 14, 14, False),
    (15, "Kaolinite", "Kaolinite", "phyllosilicate", 15, 15, False),
    (16, "Bassanite", "Bassanite", "sulfate", 16, 16, True),
    (17, "Epidote", "Epidote", "silicate", 17, 17, True),
    (18, "Montmorillonite", "Al smectite", "phyllosilicate", 18, 14, False),
    (19, "Rosenite", "Polyhydrated sulfate", "sulfate", 19, 19, False),
    (20, "Mg-Cl salt", "Polyhydrated sulfate", "salt", 20, 19, False),
    (21, "Halloysite", "Kaolinite", "phyllosilicate", 15, 15, False),
    (22, "Epsomite", "Polyhydrated sulfate", "sulfate", 19, 19, False),
    (23, "Illite/muscovite", "Illite", "phyllosilicate", 23, 23, False),
    (24, "Margarite", "Illite", "phyllosilicate", 23, 23, False),
    (25, "Analcime", "Analcime", "zeolite", 25, 25, True),
    (26, "Monohydrated sulfate", "Monohydrated sulfate", "sulfate", 26, 26, False),
    (27, "Opal 1", "Hydrated silica", "silica", 27, 27, False),
    (28, "Opal 2", "Hydrated silica", "silica", 27, 27, False),
    (29, "Iron oxide silicate sulfate", "Iron oxide silicate sulfate", "sulfate", 29, 29, True),
    (30, "Mg carbonate", "Mg carbonate", "carbonate", 30, 30, False),
    (31, "Chlorite", "Chlorite", "phyllosilicate", 31, 31, False),
    (32, "Clinochlore", "Chlorite", "phyllosilicate", 31, 31, False),
    (33, "Low-Ca pyroxene", "Low-Ca pyroxene", "mafic", 33, 33, True),
    (34, "Olivine (forsterite)", "Mg olivine", "mafic", 34, 34, False),
    (35, "High-Ca pyroxene", "High-Ca pyroxene", "mafic", 35, 35, True),
    (36, "Olivine (fayalite)", "Fe olivine", "mafic", 34, 34, True),
    (37, "Chloride", "Nondiagnostic", "salt", 37, 5, True),
    (38, "Artifact", "Artifact", "other", 38, 38, True),
    (39, "Neutral", "Bland", "other", 39, 39, True),
    (40, "Plagioclase", "Plagioclase", "mafic", 40, 40, True),
]

CLASSES: dict[int, CrismClass] = {r[0]: CrismClass(*r) for r in _ROWS}
UNCLASSIFIED = 0  # code used in class maps for pixels below the confidence threshold
NEUTRAL = 39
ARTIFACT = 38
# code for spectra outside the training data (best-class log-likelihood below what held-out
# training spectra reach): rejected rather than given the nearest class
UNKNOWN = max(CLASSES) + 1
UNKNOWN_NAME = "unknown (outside the training data)"


def name(code: int) -> str:
    """Class name of a code (0 = unclassified, :data:`UNKNOWN` = outside the training data)."""
    if code == UNCLASSIFIED:
        return "unclassified"
    if code == UNKNOWN:
        return UNKNOWN_NAME
    c = CLASSES.get(int(code))
    return c.name if c else f"class {code}"


def class_table():
    """Names and colours of every code ``0..UNKNOWN``: the one colour per class used by products and figures."""
    from orbitml.io.classmap import ClassTable

    return ClassTable.from_names([name(c) for c in range(UNKNOWN + 1)])


def broad_name(code: int) -> str:
    if code == UNCLASSIFIED:
        return "unclassified"
    if code == UNKNOWN:
        return "unknown"
    c = CLASSES.get(int(code))
    return c.broad if c else f"class {code}"


def _mapper(attr: str):
    def f(codes):
        import numpy as np

        codes = np.asarray(codes)
        out = codes.copy()
        for c in CLASSES.values():
            target = getattr(c, attr)
            if target != c.code:
                out[codes == c.code] = target
        return out

    return f


to_train_codes = _mapper("train_as")
"""Map raw crism_ml label codes to the 34 training classes (aliases merged)."""

to_merged_codes = _mapper("merge_as")
"""Map predicted codes to the reporting classes (inseparable classes merged)."""


def broad_codes(codes):
    """Integer ids of the broad class of each code (0 stays 0); ids index :func:`broad_names`."""
    import numpy as np

    names = broad_names()
    lut = {c.code: names.index(c.broad) + 1 for c in CLASSES.values()}
    codes = np.asarray(codes)
    out = np.zeros(codes.shape, dtype=np.int32)
    for code, b in lut.items():
        out[codes == code] = b
    return out


def broad_names() -> list[str]:
    """Sorted unique broad class names (id i+1 = broad_names()[i]; 0 = unclassified)."""
    return sorted({c.broad for c in CLASSES.values()})


def is_rare(code: int) -> bool:
    c = CLASSES.get(int(code))
    return bool(c.rare) if c else True
