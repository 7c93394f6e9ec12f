"""PDS Geosciences Node Orbital Data Explorer (ODE) REST product search (ODE REST Interface Manual 2.1.6).

``https://oderest.rsl.wustl.edu/live2?query=product&results=opm&output=JSON&target=mars&ihid=MRO&
iid=CRISM&pt=MTRDR&westernlon=..&easternlon=..&minlat=..&maxlat=..&minobtime=..&maxobtime=..&
minsollon=..&maxsollon=..&limit=100&offset=0``

Facts used, all from the manual: longitudes are positive east 0-360 and a box may cross the meridian
(``westernlon=358&easternlon=5``); latitudes are planetocentric; ``limit`` defaults to 100 and
``offset`` pages through longer lists (0 = first product); ``results`` letters o (ODE id), p (PDS
ids), m (metadata), f (product files), c (count); errors come back as ``Status: ERROR`` with an
``Error`` string; file entries carry ``FileName``, ``Type``, ``KBytes``, ``URL``, ``Description``.
The JSON form is the XML tree as objects: ``ODEResults.Products.Product`` is a list, a single object
when one product matches, or the string ``"No Products Found"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx

from orbitml.remote import _http
from orbitml.remote.records import Product, RemoteError, RemoteFile, parse_time

DEFAULT_ODE_URL = "https://oderest.rsl.wustl.edu/live2/"
PAGE_SIZE = 100  # the ODE default and the largest page the papers' scripts asked for

# name -> (ihid, iid, pt, pdsid pattern or None); product types as ODE names them
PRESETS: dict[str, tuple[str, str, str, str | None]] = {
    "crism-frt-mtrdr": ("MRO", "CRISM", "MTRDR", "FRT*"),
    "crism-mtrdr": ("MRO", "CRISM", "MTRDR", None),
    "crism-frt-trdr": ("MRO", "CRISM", "TRDRFRT", None),  # ODE special type: FRT/HRL/HRS/FRS/ATO/ATU TRDRs
    "crism-trdr": ("MRO", "CRISM", "TRDR", None),
    "crism-ddr": ("MRO", "CRISM", "DDR", None),
    "ctx-edr": ("MRO", "CTX", "EDR", None),
    "hirise-rdr": ("MRO", "HIRISE", "RDRV11", None),
    "hirise-edr": ("MRO", "HIRISE", "EDR", None),
}

_FOOTPRINT_KEYS = ("Footprint_C0_geometry", "Footprint_geometry", "Footprint_GL_geometry")


@dataclass(frozen=True)
class LonLatBox:
    """A latitude/longitude box stored as ODE wants it: east longitude 0-360, planetocentric latitude.

    ``west`` may be larger than ``east``: the box then crosses the 0/360 meridian."""

    west: float
    east: float
    south: float
    north: float

    @classmethod
    def from_user(cls, west: float, east: float, south: float, north: float,
                  convention: str = "east") -> LonLatBox:
        """Build from the box's western and eastern edges given in either convention:

        * ``convention="east"`` (positive east): values in -180..180 or 0..360 (e.g. -2..5 == 358..5);
        * ``convention="west"`` (positive west, as older Mars maps): the western edge has the larger
          west longitude, e.g. west=10, east=5 is the box 350..355 east.

        A box whose edges span 360 degrees is the full circle 0..360."""
        for name, v in (("west", west), ("east", east)):
            if not math.isfinite(v) or not -360.0 <= v <= 360.0:
                raise RemoteError(f"longitude {name}={v} outside -360..360")
        for name, v in (("south", south), ("north", north)):
            if not math.isfinite(v) or not -90.0 <= v <= 90.0:
                raise RemoteError(f"latitude {name}={v} outside -90..90")
        if south > north:
            raise RemoteError(f"south latitude {south} is north of north latitude {north}")
        if convention not in ("east", "west"):
            raise RemoteError(f"longitude convention must be 'east' or 'west', got {convention!r}")
        span = (east - west) if convention == "east" else (west - east)
        if span >= 360.0:
            return cls(0.0, 360.0, float(south), float(north))
        if convention == "west":
            w, e = (-west) % 360.0, (-east) % 360.0
        else:
            w, e = west % 360.0, east % 360.0
        if e == 0.0 and w > 0.0:  # an eastern edge on the meridian closes the box at 360
            e = 360.0
        return cls(w, e, float(south), float(north))

    @property
    def crosses_meridian(self) -> bool:
        return self.west > self.east

    def ode_params(self) -> dict[str, str]:
        return {"westernlon": _fmt(self.west), "easternlon": _fmt(self.east),
                "minlat": _fmt(self.south), "maxlat": _fmt(self.north)}

    def to_180(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in -180..180, as a STAC/GeoJSON bbox; west > east means the box
        crosses the 180 meridian, as the STAC API spec allows."""
        if self.west == 0.0 and self.east == 360.0:
            return (-180.0, self.south, 180.0, self.north)

        w = self.west - 360.0 if self.west >= 180.0 else self.west
        e = self.east - 360.0 if self.east > 180.0 else self.east
        return (w, self.south, e, self.north)


def _fmt(x: float) -> str:
    s = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _time_param(t: str | date | datetime) -> str:
    if isinstance(t, datetime):
        return t.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(t, date):
        return t.isoformat()
    s = str(t).strip()
    if parse_time(s) is None and parse_time(s + "T00:00:00") is None:
        raise RemoteError(f"not a date or UTC time: {t!r} (use e.g. 2008-01-31 or 2008-01-31T12:00:00)")
    return s


def build_params(*, target: str = "mars", ihid: str | None = None, iid: str | None = None,
                 pt: str | None = None, pdsid: str | None = None, preset: str | None = None,
                 box: LonLatBox | None = None, loc: str = "f",
                 start: str | date | datetime | None = None, end: str | date | datetime | None = None,
                 ls: tuple[float, float] | None = None, results: str = "opm",
                 extra: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The ODE query parameters (without limit/offset).  Returns one dict, or two when a solar
    longitude range wraps past 360 (e.g. Ls 330..30 = 330..360 and 0..30)."""
    if preset is not None:
        if preset not in PRESETS:
            raise RemoteError(f"unknown product preset {preset!r}; choose from {', '.join(sorted(PRESETS))}")
        p_ihid, p_iid, p_pt, p_pdsid = PRESETS[preset]
        ihid, iid, pt = ihid or p_ihid, iid or p_iid, pt or p_pt
        pdsid = pdsid or p_pdsid
    if not (ihid and iid and pt) and not pdsid:
        raise RemoteError("an ODE product search needs instrument host, instrument and product type "
                          "(--preset or --ihid/--iid/--pt) or a PDS product id pattern (--pdsid)")
    if loc not in ("b", "f", "o", "i"):
        raise RemoteError(f"loc must be b, f, o or i (ODE manual table 8), got {loc!r}")
    q: dict[str, str] = {"query": "product", "results": results, "output": "JSON", "target": target}
    for k, v in (("ihid", ihid), ("iid", iid), ("pt", pt), ("pdsid", pdsid)):
        if v:
            q[k] = str(v).replace(" ", "")
    if box is not None:
        q.update(box.ode_params())
        q["loc"] = loc
    if start is not None:
        q["minobtime"] = _time_param(start)
    if end is not None:
        q["maxobtime"] = _time_param(end)
    if start is not None and end is not None and parse_time(q["minobtime"]) and parse_time(q["maxobtime"]):
        if parse_time(q["minobtime"]) > parse_time(q["maxobtime"]):  # type: ignore[operator]
            raise RemoteError(f"start {q['minobtime']} is after end {q['maxobtime']}")
    if extra:
        q.update({str(k): str(v) for k, v in extra.items()})
    if ls is None:
        return [q]
    lo, hi = float(ls[0]), float(ls[1])
    for v in (lo, hi):
        if not 0.0 <= v <= 360.0:
            raise RemoteError(f"solar longitude {v} outside 0..360")
    if lo <= hi:
        return [{**q, "minsollon": _fmt(lo), "maxsollon": _fmt(hi)}]
    return [{**q, "minsollon": _fmt(lo), "maxsollon": "360"}, {**q, "minsollon": "0", "maxsollon": _fmt(hi)}]


def _as_list(node: Any) -> list[dict[str, Any]]:
    if node is None or isinstance(node, str):
        return []
    if isinstance(node, dict):
        return [node]
    return [x for x in node if isinstance(x, dict)]


def check_status(doc: Any, url: str) -> dict[str, Any]:
    """The ``ODEResults`` object of an answer; :class:`RemoteError` with ODE's message on an error."""
    res = doc.get("ODEResults") if isinstance(doc, dict) else None
    if not isinstance(res, dict):
        raise RemoteError(f"ODE at {url} answered JSON without ODEResults")
    status = str(res.get("Status", res.get("status", ""))).upper()
    if status != "SUCCESS":
        msg = res.get("Error", res.get("error", "no error message"))
        raise RemoteError(f"ODE error: {msg}")
    return res


def products_of(res: dict[str, Any]) -> list[dict[str, Any]]:
    prods = res.get("Products")
    if isinstance(prods, dict):
        return _as_list(prods.get("Product"))
    return []  # "No Products Found" or absent


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def parse_footprint(p: dict[str, Any]) -> dict[str, Any] | None:
    """GeoJSON geometry of the first footprint ODE gives (C0: -180..180 first), or None."""
    from shapely import wkt
    from shapely.errors import ShapelyError
    from shapely.geometry import mapping

    for key in _FOOTPRINT_KEYS:
        text = p.get(key)
        if not text or not isinstance(text, str):
            continue
        try:
            geom = wkt.loads(text)
        except (ShapelyError, ValueError):
            continue
        if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            continue
        g = mapping(geom)
        return {"type": g["type"], "coordinates": _lists(g["coordinates"])}
    return None


def _lists(x: Any) -> Any:
    return [_lists(v) for v in x] if isinstance(x, list | tuple) else float(x)


def parse_files(p: dict[str, Any]) -> list[RemoteFile]:
    pf = p.get("Product_files")
    entries = _as_list(pf.get("Product_file")) if isinstance(pf, dict) else []
    out = []
    for f in entries:
        url = f.get("URL")
        name = f.get("FileName")
        if not url or not name:
            continue
        kb = _num(f.get("KBytes"))
        out.append(RemoteFile(url=str(url).strip(), name=str(name).strip(),
                              size_hint=None if kb is None else int(round(kb * 1024)),
                              kind=f.get("Type"), description=f.get("Description")))
    return out


_KEEP = ("Data_Set_Id", "PDSVolume_Id", "Observation_id", "Observation_type", "LabelFileName", "LabelURL",
         "ProductURL", "FilesURL", "Center_latitude", "Center_longitude", "Incidence_angle", "Emission_angle",
         "Phase_angle", "Map_scale", "Map_resolution", "Footprints_cross_meridian", "Pole_state",
         "Product_creation_time")


def parse_product(p: dict[str, Any]) -> Product:
    """One ``Product`` object of an ODE JSON answer as a typed record."""
    pid = p.get("pdsid") or p.get("ode_id")
    if not pid:
        raise RemoteError("ODE product without pdsid or ode_id")
    w, e = _num(p.get("Westernmost_longitude")), _num(p.get("Easternmost_longitude"))
    s, n = _num(p.get("Minimum_latitude")), _num(p.get("Maximum_latitude"))
    bbox = (w, s, e, n) if None not in (w, s, e, n) else None
    return Product(
        source="ode", product_id=str(pid), ode_id=None if p.get("ode_id") is None else str(p["ode_id"]),
        instrument_host=p.get("ihid"), instrument=p.get("iid"), product_type=p.get("pt"),
        target=p.get("Target_name"), footprint=parse_footprint(p), bbox=bbox,  # type: ignore[arg-type]
        start_time=parse_time(p.get("UTC_start_time")), stop_time=parse_time(p.get("UTC_stop_time")),
        observation_time=parse_time(p.get("Observation_time")),
        solar_longitude=_num(p.get("Solar_longitude")), files=parse_files(p),
        properties={k: p[k] for k in _KEEP if k in p and p[k] not in (None, "")},
    )


def search(*, base_url: str = DEFAULT_ODE_URL, page_size: int = PAGE_SIZE, max_products: int | None = 10000,
           client: httpx.Client | None = None, timeout: float = 120.0, retries: int = _http.DEFAULT_RETRIES,
           backoff: float = 0.5, on_page: Callable[[int, int], None] | None = None,
           with_files: bool = False, **query: Any) -> list[Product]:
    """Search ODE and page through every result (``offset`` += ``page_size`` until a short page).

    ``query`` takes the keyword arguments of :func:`build_params`.  ``max_products`` stops a query
    that matches more than that (None: no cap).  ``on_page(page_number, n_so_far)`` reports progress.
    Products of a wrapped solar-longitude range (two ODE queries) are merged without duplicates."""
    if page_size < 1:
        raise RemoteError("page size must be at least 1")
    if with_files and "results" not in query:
        query["results"] = "opmf"
    param_sets = build_params(**query)
    own = client is None
    cl = client or _http.make_client(timeout=timeout)
    seen: dict[str, Product] = {}
    pages = 0
    try:
        for params in param_sets:
            offset = 0
            while True:
                doc = _http.get_json(cl, base_url, params={**params, "limit": str(page_size),
                                                           "offset": str(offset)},
                                     retries=retries, backoff=backoff, what="ODE")
                batch = products_of(check_status(doc, base_url))
                pages += 1
                for raw in batch:
                    prod = parse_product(raw)
                    seen.setdefault(prod.ode_id or prod.product_id, prod)
                if on_page is not None:
                    on_page(pages, len(seen))
                if max_products is not None and len(seen) > max_products:
                    raise RemoteError(f"ODE query matches more than {max_products} products; narrow it "
                                      f"(box, dates, Ls) or raise the cap")
                if len(batch) < page_size:
                    break
                offset += page_size
    finally:
        if own:
            cl.close()
    return list(seen.values())


def count(*, base_url: str = DEFAULT_ODE_URL, client: httpx.Client | None = None, timeout: float = 120.0,
          retries: int = _http.DEFAULT_RETRIES, **query: Any) -> int:
    """The number of products a query matches (``results=c``)."""
    query["results"] = "c"
    total = 0
    own = client is None
    cl = client or _http.make_client(timeout=timeout)
    try:
        for params in build_params(**query):
            res = check_status(_http.get_json(cl, base_url, params=params, retries=retries, what="ODE"), base_url)
            n = _num(res.get("Count"))
            if n is None:
                raise RemoteError("ODE count answer without Count")
            total += int(n)
    finally:
        if own:
            cl.close()
    return total


def product_files(products: Iterable[Product], *, base_url: str = DEFAULT_ODE_URL, target: str | None = None,
                  batch: int = 50, client: httpx.Client | None = None, timeout: float = 120.0,
                  retries: int = _http.DEFAULT_RETRIES) -> list[Product]:
    """Fill in each product's files with the product-files query (``results=opf&odeid=a|b|...``;
    the manual recommends a separate files query after the metadata search).  Products without an
    ODE id are looked up by ``pdsid``.  Returns new records; the input is not changed."""
    prods = list(products)
    by_ode = [p for p in prods if p.ode_id]
    by_pds = [p for p in prods if not p.ode_id]
    files: dict[str, list[RemoteFile]] = {}
    own = client is None
    cl = client or _http.make_client(timeout=timeout)
    try:
        for i in range(0, len(by_ode), batch):
            chunk = by_ode[i:i + batch]
            params = {"query": "product", "results": "opf", "output": "JSON",
                      "odeid": "|".join(p.ode_id for p in chunk if p.ode_id), "limit": str(len(chunk))}
            if target or chunk[0].target:
                params["target"] = (target or chunk[0].target or "mars").lower()
            res = check_status(_http.get_json(cl, base_url, params=params, retries=retries, what="ODE"), base_url)
            for raw in products_of(res):
                files[str(raw.get("ode_id"))] = parse_files(raw)
        for p in by_pds:
            params = {"query": "product", "results": "opf", "output": "JSON", "pdsid": p.product_id,
                      "target": (target or p.target or "mars").lower()}
            res = check_status(_http.get_json(cl, base_url, params=params, retries=retries, what="ODE"), base_url)
            for raw in products_of(res):
                if str(raw.get("pdsid", "")).upper() == p.product_id.upper():
                    files[p.product_id] = parse_files(raw)
    finally:
        if own:
            cl.close()
    out = []
    for p in prods:
        key = p.ode_id if p.ode_id else p.product_id
        out.append(p.model_copy(update={"files": files.get(key, p.files)}))
    return out
