"""Finding and fetching data: PDS ODE REST search, STAC item search, PDS archive paths, Zenodo records,
resumable checked downloads into a cache, and CRISM/CTX footprint pairing.

The network is touched only by the functions here, only when called, always with timeouts.  Every
search returns the same typed records (:class:`orbitml.remote.records.Product`), which the download
path (:mod:`orbitml.remote.download`) and the pairing (:mod:`orbitml.remote.pairing`) accept.
"""

from orbitml.remote.records import Product, RemoteError, RemoteFile, load_results, save_results

__all__ = ["Product", "RemoteError", "RemoteFile", "load_results", "save_results"]
