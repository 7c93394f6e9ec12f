"""STAC API item search through pystac-client, into the same typed records and download path.

The default endpoint is the USGS Astrogeology STAC API (``https://stac.astrogeology.usgs.gov/api/``),
which serves analysis-ready planetary products, e.g. the collections
``mro_hirise_uncontrolled_observations`` and ``mro_ctx_controlled_usgs_dtms``.  Assets are chosen by
role (default ``data``) or by key; sizes and checksums come from the STAC ``file`` extension
(``file:size``, ``file:checksum`` as a multihash: ``1220`` + sha2-256 hex, ``d510`` + md5 hex).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from orbitml.remote.records import Product, RemoteError, RemoteFile, name_from_url, parse_time, redact

DEFAULT_STAC_URL = "https://stac.astrogeology.usgs.gov/api/"
_LS_KEYS = ("ssys:solar_longitude", "solar_longitude", "mars:solar_longitude", "ls")
_TRANSIENT = (429, 500, 502, 503, 504)


def parse_multihash(value: str | None) -> tuple[str | None, str | None]:
    """(md5, sha256) hex digests from a STAC ``file:checksum`` multihash (others are ignored)."""
    if not value or not isinstance(value, str):
        return None, None
    v = value.strip().lower()
    if v.startswith("1220") and len(v) == 4 + 64:
        return None, v[4:]
    if v.startswith("d510") and len(v) == 4 + 32:
        return v[4:], None
    return None, None


def _files(item: Any, roles: set[str] | None, keys: Sequence[str] | None) -> list[RemoteFile]:
    out = []
    for key, asset in item.assets.items():
        aroles = list(asset.roles or [])
        if keys:
            if key not in keys:
                continue
        elif roles is not None and not (set(r.lower() for r in aroles) & roles):
            continue
        href = asset.get_absolute_href() or asset.href
        if not href or not href.lower().startswith(("http://", "https://")):
            continue  # s3:// and relative hrefs without a root are not fetched here
        extra = asset.extra_fields or {}
        md5, sha = parse_multihash(extra.get("file:checksum"))
        size = extra.get("file:size")
        out.append(RemoteFile(url=href, name=name_from_url(href), size=int(size) if isinstance(size, int) else None,
                              md5=md5, sha256=sha, kind=key, roles=aroles, description=asset.title))
    return out


def _bbox2d(b: Any) -> tuple[float, float, float, float] | None:
    if not b:
        return None
    if len(b) == 4:
        return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
    if len(b) == 6:  # west, south, min z, east, north, max z
        return (float(b[0]), float(b[1]), float(b[3]), float(b[4]))
    return None


def item_to_product(item: Any, roles: Iterable[str] | None = ("data",),
                    keys: Sequence[str] | None = None) -> Product:
    """A pystac Item as a :class:`Product` (assets filtered by ``roles`` or ``keys``)."""
    props = dict(item.properties or {})
    geom = item.geometry if isinstance(item.geometry, dict) else None
    if geom is not None and geom.get("type") not in ("Polygon", "MultiPolygon"):
        geom = None
    ls = None
    for k in _LS_KEYS:
        v = props.get(k)
        if isinstance(v, int | float) and math.isfinite(v):
            ls = float(v)
            break
    instruments = props.get("instruments")
    targets = props.get("ssys:targets")
    rset = {r.lower() for r in roles} if roles is not None else None
    return Product(
        source="stac", product_id=item.id, collection=item.collection_id,
        instrument_host=props.get("platform"),
        instrument=", ".join(instruments) if isinstance(instruments, list) else instruments,
        target=targets[0] if isinstance(targets, list) and targets else None,
        footprint=geom, bbox=_bbox2d(item.bbox),
        observation_time=item.datetime if isinstance(item.datetime, datetime) else None,
        start_time=parse_time(props.get("start_datetime")), stop_time=parse_time(props.get("end_datetime")),
        solar_longitude=ls, files=_files(item, rset, keys),
        properties={k: v for k, v in props.items() if isinstance(v, str | int | float | bool)},
    )


def search(*, url: str = DEFAULT_STAC_URL, collections: Sequence[str] | None = None,
           bbox: Sequence[float] | None = None, datetime: str | None = None,
           query: dict[str, Any] | list[str] | None = None, ids: Sequence[str] | None = None,
           max_items: int | None = 1000, limit: int | None = 100, roles: Iterable[str] | None = ("data",),
           keys: Sequence[str] | None = None, method: str = "POST", timeout: float = 60.0, retries: int = 5,
           backoff: float = 0.5) -> list[Product]:
    """STAC API item search (all pages, up to ``max_items``) as :class:`Product` records.

    ``bbox`` is (west, south, east, north) in -180..180 (use :meth:`LonLatBox.to_180`); ``datetime``
    is a STAC interval such as ``"2008-01-01/2010-12-31"``; ``query`` is the STAC query extension,
    e.g. ``{"eo:cloud_cover": {"lt": 10}}`` or ``["view:sun_elevation>30"]``."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    if bbox is not None:
        b = [float(x) for x in bbox]
        if len(b) != 4 or not all(math.isfinite(x) for x in b) or b[1] > b[3]:
            raise RemoteError(f"bbox must be west,south,east,north with south <= north, got {bbox}")
    if method.upper() not in ("GET", "POST"):
        raise RemoteError(f"method must be GET or POST, got {method!r}")
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=_TRANSIENT, allowed_methods=None, raise_on_status=False)
    io = StacApiIO(timeout=timeout, max_retries=retry)
    try:
        client = Client.open(url, stac_io=io)
        s = client.search(collections=list(collections) if collections else None, bbox=bbox, datetime=datetime,
                          query=query, ids=list(ids) if ids else None, max_items=max_items, limit=limit,
                          method=method.upper())
        items = list(s.items())
    except APIError as exc:
        msg = " ".join(str(exc).split())[:200]
        raise RemoteError(f"STAC API at {redact(url)} answered an error: {msg}") from None
    except Exception as exc:  # requests/urllib3 errors and pystac-client's own
        if type(exc).__module__.split(".")[0] in ("requests", "urllib3", "pystac_client", "pystac"):
            raise RemoteError(f"STAC search at {redact(url)} failed: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:200]}") from None
        raise
    return [item_to_product(it, roles=roles, keys=keys) for it in items]
