"""CRISM/CTX pairing against hand-computed overlap fractions and time differences."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime

import pytest

from orbitml.remote import pairing
from orbitml.remote.records import Product


def rect(w, e, s, n):
    return [[[w, s], [e, s], [e, n], [w, n], [w, s]]]


def prod(pid, geom, t=None, instrument="CTX"):
    return Product(source="ode", product_id=pid, instrument=instrument, footprint=geom,
                   observation_time=None if t is None else datetime.fromisoformat(t).replace(tzinfo=UTC))


def poly(w, e, s, n):
    return {"type": "Polygon", "coordinates": rect(w, e, s, n)}


def multi(*boxes):
    return {"type": "MultiPolygon", "coordinates": [rect(*b) for b in boxes]}


C1 = prod("FRT_C1", poly(10.0, 10.2, 60.0, 60.1), "2008-01-14T10:00:00", "CRISM")
C2 = prod("FRT_C2", multi((179.95, 180, -10, -9.9), (-180, -179.95, -10, -9.9)), "2010-06-01T00:00:00", "CRISM")
CTX = [
    prod("X_full", poly(9.9, 10.3, 59.9, 60.2), "2008-01-20T10:00:00"),  # contains C1, +6 days
    prod("X_full2", poly(9.95, 10.25, 59.95, 60.15), "2008-01-12T10:00:00"),  # contains C1, -2 days
    prod("X_half", poly(10.1, 10.5, 60.0, 60.1), "2008-01-14T11:00:00"),  # half of C1's longitudes, +1 h
    prod("X_far", poly(50, 51, 60, 61), "2008-01-14T10:00:00"),
    prod("X_anti", multi((179.9, 180, -10.1, -9.8), (-180, -179.9, -10.1, -9.8)), "2010-06-03T00:00:00"),
    prod("X_anti_half", poly(179.95, 180, -10, -9.9), "2010-06-01T12:00:00"),  # half of C2, +12 h
    prod("X_360", poly(179.8, 180.2, -10.2, -9.7)),  # 0-360 style footprint across 180, no time
]


def test_overlap_fractions_by_hand():
    # same latitude band: on an equal-area projection the fraction is the longitude fraction
    assert pairing.overlap_fraction(C1, CTX[0]) == pytest.approx(1.0)
    assert pairing.overlap_fraction(C1, CTX[2]) == pytest.approx(0.1 / 0.2, abs=1e-9)
    assert pairing.overlap_fraction(C1, CTX[3]) == 0.0
    assert pairing.overlap_fraction(C2, CTX[4]) == pytest.approx(1.0)
    assert pairing.overlap_fraction(C2, CTX[5]) == pytest.approx(0.5, abs=1e-9)
    assert pairing.overlap_fraction(C2, CTX[6]) == pytest.approx(1.0)
    # a quarter: half the longitudes and half the latitudes (near the equator cos(lat) ~ 1)
    c = prod("C", poly(0, 0.2, 0, 0.2))
    q = prod("Q", poly(0.1, 0.4, 0.1, 0.4))
    assert pairing.overlap_fraction(c, q) == pytest.approx(0.25, rel=1e-5)


def test_pairs_contained_closest_in_time_first():
    pairs = pairing.pair([C1, C2], CTX)
    got = [(p.crism_id, p.rank, p.ctx_id) for p in pairs]
    assert got == [("FRT_C1", 1, "X_full2"), ("FRT_C1", 2, "X_full"),
                   ("FRT_C2", 1, "X_anti"), ("FRT_C2", 2, "X_360")]
    assert pairs[0].dt_days == pytest.approx(-2.0) and pairs[1].dt_seconds == pytest.approx(6 * 86400)
    assert pairs[2].dt_days == pytest.approx(2.0) and pairs[3].dt_days is None
    assert all(p.ctx_contains_crism and p.overlap_fraction == pytest.approx(1.0) for p in pairs)


def test_partial_overlap_and_time_window():
    pairs = pairing.pair([C1, C2], CTX, min_overlap=0.5)
    c1 = [(p.ctx_id, round(p.overlap_fraction, 6), p.ctx_contains_crism) for p in pairs if p.crism_id == "FRT_C1"]
    assert c1 == [("X_half", 0.5, False), ("X_full2", 1.0, True), ("X_full", 1.0, True)]
    assert pairs[0].dt_seconds == pytest.approx(3600.0)
    near = pairing.pair([C1, C2], CTX, min_overlap=0.5, max_days=1.0)
    assert [(p.crism_id, p.ctx_id) for p in near] == [("FRT_C1", "X_half"), ("FRT_C2", "X_anti_half")]
    assert [p.ctx_id for p in pairing.pair([C1], CTX, max_per_crism=1)] == ["X_full2"]


def test_csv_and_geojson(tmp_path):
    pairs = pairing.pair([C1, C2], CTX)
    pairing.write_csv(pairs, tmp_path / "pairs.csv")
    rows = list(csv.DictReader(open(tmp_path / "pairs.csv")))
    assert [r["ctx_id"] for r in rows] == ["X_full2", "X_full", "X_anti", "X_360"]
    assert float(rows[0]["dt_days"]) == pytest.approx(-2.0) and rows[3]["dt_days"] == ""
    pairing.write_geojson(pairs, [C1, C2], CTX, tmp_path / "pairs.geojson")
    doc = json.loads((tmp_path / "pairs.geojson").read_text())
    roles = [(f["properties"]["role"], f["properties"]["product_id"]) for f in doc["features"]]
    assert roles == [("crism", "FRT_C1"), ("ctx", "X_full2"), ("ctx", "X_full"),
                     ("crism", "FRT_C2"), ("ctx", "X_anti"), ("ctx", "X_360")]
    assert doc["features"][0]["properties"]["ctx_ids"] == ["X_full2", "X_full"]
    assert doc["features"][1]["geometry"] == CTX[1].footprint


def test_bbox_fallback_across_meridian():
    c = Product(source="ode", product_id="C", bbox=(359.9, 0.0, 0.1, 0.1))  # 0-360 bbox crossing 0
    x = Product(source="ode", product_id="X", footprint=poly(-0.2, 0.2, -0.1, 0.2))
    assert pairing.overlap_fraction(c, x) == pytest.approx(1.0)
