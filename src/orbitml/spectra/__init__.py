"""Spectral math on plain numpy arrays: libraries, resampling to sensor bands.

``SpectralLibrary`` holds named spectra on one wavelength grid (nm); ``read_library`` reads ENVI
``.sli``, USGS splib07 ASCII records and CSV; ``write_library`` writes ``.sli`` or CSV;
``resample_to_bands`` convolves spectra to a sensor's bands with Gaussian responses.
"""

from orbitml.spectra.library import LibraryKeyError, SpectralLibrary, read_library, write_library
from orbitml.spectra.resample import resample_to_bands, response_matrix

__all__ = [
    "SpectralLibrary",
    "LibraryKeyError",
    "read_library",
    "write_library",
    "resample_to_bands",
    "response_matrix",
]
