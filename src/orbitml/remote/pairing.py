"""CRISM/CTX pairing: for each CRISM product, the CTX products whose footprint contains it (or covers
at least ``min_overlap`` of it), closest in time first, with the time difference and the overlap
fraction = area(CRISM ∩ CTX) / area(CRISM).

Areas are computed in a sinusoidal (equal-area) projection centred on each CRISM footprint, so the
fraction does not depend on latitude; footprints split at the ±180 (or 0/360) meridian are joined
again by shifting their parts to the CRISM footprint's side.  Footprints are the records' GeoJSON
polygons, else their bounding boxes.  Polar caps (footprints around a pole) are not handled.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orbitml.remote.records import Product, RemoteError

CONTAIN_TOL = 1e-9


@dataclass
class Pair:
    crism_id: str
    rank: int
    ctx_id: str
    dt_days: float | None
    dt_seconds: float | None
    overlap_fraction: float
    ctx_contains_crism: bool
    crism_time: str | None
    ctx_time: str | None


def _geometry(p: Product):
    from shapely.geometry import MultiPolygon, box, shape

    if p.footprint:
        try:
            g = shape(p.footprint)
        except (ValueError, KeyError, TypeError, AttributeError):
            g = None
        if g is not None and not g.is_empty:
            return g if g.is_valid else g.buffer(0)
    if p.bbox:
        w, s, e, n = p.bbox
        if e < w:  # crosses the meridian
            return MultiPolygon([box(w, s, 360.0, n), box(0.0, s, e, n)])
        return box(w, s, e, n)
    return None


def _parts(g) -> list:
    return list(g.geoms) if g.geom_type == "MultiPolygon" else [g]


def _unwrap(g, ref_lon: float):
    """Shift each polygon part by a multiple of 360 so it lies within 180 degrees of ``ref_lon``."""
    from shapely import affinity
    from shapely.ops import unary_union

    out = []
    for part in _parts(g):
        c = part.centroid.x
        k = round((ref_lon - c) / 360.0)
        out.append(affinity.translate(part, xoff=360.0 * k) if k else part)
    return unary_union(out)


def _equal_area(g, lon0: float):
    """Sinusoidal projection about ``lon0`` (degrees of arc): x = (lon - lon0) cos(lat), y = lat."""
    import numpy as np
    import shapely

    def f(xy):
        out = np.array(xy, dtype=float)
        out[:, 0] = (out[:, 0] - lon0) * np.cos(np.radians(out[:, 1]))
        return out

    return shapely.transform(g, f)


def _ref_lon(g) -> float:
    """A longitude inside the footprint: of its largest part (so a split footprint joins on that side)."""
    big = max(_parts(g), key=lambda q: q.area)
    return big.centroid.x


def overlap_fraction(crism: Product, ctx: Product) -> float:
    """area(CRISM ∩ CTX) / area(CRISM) on an equal-area projection (0 when either has no footprint)."""
    gc, gx = _geometry(crism), _geometry(ctx)
    if gc is None or gx is None:
        return 0.0
    return _fraction(_projected(gc), gx)


def _projected(gc):
    """The CRISM footprint on the equal-area plane and the reference longitude (once per CRISM product)."""
    ref = _ref_lon(gc)
    return _equal_area(_unwrap(gc, ref), ref), ref


def _fraction(projected, gx) -> float:
    c, ref = projected
    a = c.area
    if a <= 0:
        return 0.0
    return float(min(1.0, c.intersection(_equal_area(_unwrap(gx, ref), ref)).area / a))


def pair(crism: Iterable[Product], ctx: Iterable[Product], *, min_overlap: float = 1.0,
         max_days: float | None = None, max_per_crism: int | None = None) -> list[Pair]:
    """Pairs for every CRISM product, each CRISM's CTX list closest in time first (ties: larger overlap
    first; products without a time last).  ``min_overlap=1`` keeps CTX footprints that contain the
    CRISM footprint; lower values keep partial cover too."""
    from shapely.strtree import STRtree

    if not 0.0 < min_overlap <= 1.0:
        raise RemoteError(f"min overlap must be in (0, 1], got {min_overlap}")
    ctx = list(ctx)
    gx = [_geometry(p) for p in ctx]
    # the tree holds CTX parts shifted by -360, 0, +360 so any CRISM longitude convention meets them
    from shapely import affinity

    tree_geoms, owner = [], []
    for i, g in enumerate(gx):
        if g is None:
            continue
        for part in _parts(g):
            for k in (-360.0, 0.0, 360.0):
                tree_geoms.append(affinity.translate(part, xoff=k) if k else part)
                owner.append(i)
    tree = STRtree(tree_geoms) if tree_geoms else None
    out: list[Pair] = []
    for c in crism:
        gc = _geometry(c)
        if gc is None or tree is None:
            continue
        cand = sorted({owner[j] for j in tree.query(gc)})
        proj = _projected(gc)
        rows = []
        for i in cand:
            tc, tx = c.time, ctx[i].time
            dt = (tx - tc).total_seconds() if tc is not None and tx is not None else None
            if max_days is not None and (dt is None or abs(dt) > max_days * 86400.0):
                continue  # the cheap time test before the polygon intersection
            frac = _fraction(proj, gx[i])
            if frac + CONTAIN_TOL < min_overlap:
                continue
            rows.append((dt, frac, ctx[i]))
        rows.sort(key=lambda r: (r[0] is None, abs(r[0]) if r[0] is not None else 0.0, -r[1], r[2].product_id))
        for rank, (dt, frac, x) in enumerate(rows[:max_per_crism] if max_per_crism else rows, start=1):
            out.append(Pair(crism_id=c.product_id, rank=rank, ctx_id=x.product_id,
                            dt_days=None if dt is None else dt / 86400.0, dt_seconds=dt,
                            overlap_fraction=round(frac, 9), ctx_contains_crism=frac >= 1.0 - CONTAIN_TOL,
                            crism_time=c.time.isoformat() if c.time else None,
                            ctx_time=x.time.isoformat() if x.time else None))
    return out


def write_csv(pairs: list[Pair], path: str | os.PathLike, overwrite: bool = True) -> Path:
    from orbitml.io.atomic import atomic_path

    path = Path(path)
    fields = list(Pair.__dataclass_fields__)
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for p in pairs:
            w.writerow({k: ("" if v is None else v) for k, v in asdict(p).items()})
    return path


def to_geojson(pairs: list[Pair], crism: Iterable[Product], ctx: Iterable[Product]) -> dict[str, Any]:
    """A FeatureCollection: each paired CRISM footprint (role ``crism``, its CTX ids) and each CTX
    footprint of a pair (role ``ctx``, the pair's fields)."""
    cmap = {p.product_id: p for p in crism}
    xmap = {p.product_id: p for p in ctx}
    feats: list[dict[str, Any]] = []
    by_crism: dict[str, list[Pair]] = {}
    for pr in pairs:
        by_crism.setdefault(pr.crism_id, []).append(pr)
    for cid, prs in by_crism.items():
        c = cmap[cid]
        feats.append({"type": "Feature", "geometry": _geojson_geom(c),
                      "properties": {"role": "crism", "product_id": cid, "time": prs[0].crism_time,
                                     "n_ctx": len(prs), "ctx_ids": [p.ctx_id for p in prs]}})
        for pr in prs:
            feats.append({"type": "Feature", "geometry": _geojson_geom(xmap[pr.ctx_id]),
                          "properties": {"role": "ctx", "product_id": pr.ctx_id, **asdict(pr)}})
    return {"type": "FeatureCollection", "features": feats}


def _geojson_geom(p: Product) -> dict[str, Any] | None:
    if p.footprint:
        return p.footprint
    g = _geometry(p)
    if g is None:
        return None
    from shapely.geometry import mapping

    return json.loads(json.dumps(mapping(g)))


def write_geojson(pairs: list[Pair], crism: Iterable[Product], ctx: Iterable[Product],
                  path: str | os.PathLike, overwrite: bool = True) -> Path:
    from orbitml.io.atomic import atomic_path

    path = Path(path)
    doc = to_geojson(pairs, crism, ctx)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return path


def summary(pairs: list[Pair]) -> dict[str, Any]:
    crisms = {p.crism_id for p in pairs}
    best = [p for p in pairs if p.rank == 1 and p.dt_days is not None]
    return {"pairs": len(pairs), "crism_paired": len(crisms),
            "median_best_abs_dt_days": (sorted(abs(p.dt_days) for p in best)[len(best) // 2]  # type: ignore[arg-type]
                                        if best else None)}
