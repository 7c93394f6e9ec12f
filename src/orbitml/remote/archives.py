"""PDS archive paths and Zenodo records, as :class:`Product` records for the download path.

PDS Imaging Node, MESSENGER MDIS EDR (raw frames, PDS3 with attached labels).  A frame's product id
is ``E`` + camera (``N`` narrow-angle, ``W`` wide-angle) + the 10-digit spacecraft clock count + a
one-letter suffix, e.g. ``EN0108828322M``.  The archive files frames by the UTC day they were taken::

    <base>/MSGRMDS_1001/DATA/<YYYY>_<DOY>/<PRODUCT_ID>.IMG

The day folder cannot be computed from the clock count without the SPICE clock kernel, so the rule
takes the frame's observation date (from an ODE record's ``UTC_start_time``, or given by hand).

Zenodo: the records API ``<base>/records/<id>`` lists each file's ``key``, ``size``, ``checksum``
(``md5:<hex>``) and ``links.self`` (``.../files/<key>/content``).  A Zenodo DOI
``10.5281/zenodo.<n>`` names record ``<n>`` (a concept DOI names the concept record, which the API
resolves to its latest version).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from orbitml.remote import _http
from orbitml.remote.records import Product, RemoteError, RemoteFile, check_url, parse_time, safe_component, safe_relpath

PDS_IMAGING_MESSENGER = "https://pds-imaging.jpl.nasa.gov/data/messenger/"
MDIS_EDR_VOLUME = "MSGRMDS_1001"
ZENODO_API = "https://zenodo.org/api"

_MDIS_ID = re.compile(r"^E[NW]\d{10}[A-Z]$")
_ZENODO_DOI = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)?10\.5281/zenodo\.(\d+)$", re.IGNORECASE)
_ZENODO_URL = re.compile(r"^https?://(?:www\.)?zenodo\.org/(?:api/)?records?/(\d+)(?:[/?#].*)?$", re.IGNORECASE)


def archive_product(base: str, relpath: str, product_id: str, *, source: str = "pds",
                    label: str | None = None, **fields: Any) -> Product:
    """A product at ``base`` + ``relpath`` (checked: no ``..``, no absolute part), plus an optional
    detached label beside it."""
    check_url(base)
    rel = safe_relpath(relpath, "archive path")
    url = base.rstrip("/") + "/" + quote(str(rel))
    files = [RemoteFile(url=url, name=rel.name, kind="Product")]
    if label:
        lrel = rel.with_name(safe_component(label, "label name"))
        files.append(RemoteFile(url=base.rstrip("/") + "/" + quote(str(lrel)), name=lrel.name, kind="Product"))
    return Product(source=source, product_id=safe_component(product_id), files=files, **fields)  # type: ignore[arg-type]


def mdis_edr_path(product_id: str, observed: str | date | datetime) -> str:
    """Volume-relative path of an MDIS EDR frame: ``MSGRMDS_1001/DATA/YYYY_DDD/<ID>.IMG``."""
    pid = product_id.strip().upper()
    if pid.endswith(".IMG"):
        pid = pid[:-4]
    if not _MDIS_ID.match(pid):
        raise RemoteError(f"not an MDIS EDR product id: {product_id!r} (expected e.g. EN0108828322M)")
    if isinstance(observed, datetime):
        d = observed.date()
    elif isinstance(observed, date):
        d = observed
    else:
        t = parse_time(str(observed)) or parse_time(str(observed) + "T00:00:00")
        if t is None:
            raise RemoteError(f"not an observation date: {observed!r}")
        d = t.date()
    if d.year < 2004 or d.year > 2015:
        raise RemoteError(f"{d.isoformat()} is outside the MESSENGER mission (2004-2015)")
    return f"{MDIS_EDR_VOLUME}/DATA/{d.year}_{d.timetuple().tm_yday:03d}/{pid}.IMG"


def mdis_edr(product_id: str, observed: str | date | datetime, base: str = PDS_IMAGING_MESSENGER) -> Product:
    """An MDIS EDR frame on the PDS Imaging Node as a :class:`Product` (attached label: one file)."""
    rel = mdis_edr_path(product_id, observed)
    pid = rel.rsplit("/", 1)[1][:-4]
    t = observed if isinstance(observed, datetime) else parse_time(str(observed))
    return archive_product(base, rel, pid, instrument_host="MESSENGER", instrument="MDIS", product_type="EDR",
                           target="MERCURY", start_time=t)


def zenodo_record_id(ref: str | int) -> int:
    """The record number of a Zenodo record id, DOI (``10.5281/zenodo.N``, doi.org URL) or record URL."""
    s = str(ref).strip()
    if s.isdigit():
        return int(s)
    for rx in (_ZENODO_DOI, _ZENODO_URL):
        m = rx.match(s)
        if m:
            return int(m.group(1))
    raise RemoteError(f"not a Zenodo record id, Zenodo DOI (10.5281/zenodo.N) or record URL: {ref!r}")


def parse_zenodo_record(doc: dict[str, Any], api: str = ZENODO_API) -> Product:
    """A Zenodo records-API answer as a :class:`Product` with one file per record file."""
    if not isinstance(doc, dict) or "id" not in doc:
        raise RemoteError("Zenodo answer without a record id")
    rid = str(doc["id"])
    meta = doc.get("metadata") or {}
    entries = doc.get("files") or []
    if isinstance(entries, dict):  # InvenioRDM form: {"entries": {key: {...}}} or {"entries": [...]}
        e = entries.get("entries") or []
        entries = list(e.values()) if isinstance(e, dict) else e
    files = []
    for f in entries:
        key = f.get("key") or f.get("filename")
        if not key:
            continue
        links = f.get("links") or {}
        url = links.get("self") or links.get("download") or links.get("content")
        if not url:
            url = f"{api.rstrip('/')}/records/{rid}/files/{quote(str(key))}/content"
        checksum = str(f.get("checksum") or "")
        md5 = checksum.split(":", 1)[1] if checksum.lower().startswith("md5:") else (
            checksum if re.fullmatch(r"[0-9a-fA-F]{32}", checksum) else None)
        size = f.get("size", f.get("filesize"))
        files.append(RemoteFile(url=str(url), name=str(key), size=int(size) if isinstance(size, int | float) else None,
                                md5=md5, kind="file"))
    return Product(source="zenodo", product_id=safe_component(rid, "record id"),
                   observation_time=parse_time(meta.get("publication_date")), files=files,
                   properties={k: v for k, v in (("title", meta.get("title")), ("doi", doc.get("doi")),
                                                 ("version", meta.get("version")),
                                                 ("license", (meta.get("license") or {}).get("id")
                                                  if isinstance(meta.get("license"), dict) else meta.get("license")))
                               if v})


def zenodo_record(ref: str | int, *, api: str = ZENODO_API, client: httpx.Client | None = None,
                  timeout: float = 60.0, retries: int = _http.DEFAULT_RETRIES, backoff: float = 0.5) -> Product:
    """Fetch a Zenodo record's file list and checksums (``GET <api>/records/<id>``)."""
    rid = zenodo_record_id(ref)
    own = client is None
    cl = client or _http.make_client(timeout=timeout)
    try:
        doc = _http.get_json(cl, f"{api.rstrip('/')}/records/{rid}", retries=retries, backoff=backoff,
                             what="Zenodo")
    finally:
        if own:
            cl.close()
    return parse_zenodo_record(doc, api)
