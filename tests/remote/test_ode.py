"""ODE REST search against the local replay server: query parameters, paging, typed parse, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orbitml.remote import ode
from orbitml.remote.ode import LonLatBox
from orbitml.remote.records import RemoteError, load_results, save_results

from .conftest import Reply
from .ode_data import ode_answer, ode_error, ode_product


@pytest.mark.parametrize(
    ("west", "east", "conv", "expect"),
    [
        (10, 20, "east", (10, 20)),
        (-2, 5, "east", (358, 5)),  # -180..180 box across 0 -> 0-360 box crossing the meridian
        (358, 5, "east", (358, 5)),  # already 0-360, crossing
        (-10, 0, "east", (350, 360)),  # eastern edge on the meridian closes at 360
        (170, -170, "east", (170, 190)),  # -180..180 box across 180
        (-180, 180, "east", (0, 360)),  # full circle
        (10, 5, "west", (350, 355)),  # positive-west: 10W..5W
        (5, 355, "west", (355, 5)),  # positive-west across 0: 5W..355W = 355E..5E
    ],
)
def test_lon_box_conventions(west, east, conv, expect):
    b = LonLatBox.from_user(west, east, -5, 5, convention=conv)
    assert (b.west, b.east) == pytest.approx(expect)
    assert b.crosses_meridian == (expect[0] > expect[1])


def test_lon_box_to_180_and_errors():
    assert LonLatBox.from_user(-2, 5, 0, 1).to_180() == (-2, 0, 5, 1)
    assert LonLatBox.from_user(170, 190, 0, 1).to_180() == (170, 0, -170, 1)
    assert LonLatBox.from_user(350, 360, 0, 1).to_180() == (-10, 0, 0, 1)
    with pytest.raises(RemoteError, match="latitude"):
        LonLatBox.from_user(0, 1, 10, 5)
    with pytest.raises(RemoteError, match="longitude"):
        LonLatBox.from_user(0, 400, 0, 5)


def test_build_params_documented_names():
    box = LonLatBox.from_user(-2, 5, -10, 10)
    (q,) = ode.build_params(preset="crism-frt-mtrdr", box=box, start="2008-01-01", end="2009-12-31",
                            ls=(90, 180))
    assert q == {"query": "product", "results": "opm", "output": "JSON", "target": "mars", "ihid": "MRO",
                 "iid": "CRISM", "pt": "MTRDR", "pdsid": "FRT*", "westernlon": "358", "easternlon": "5",
                 "minlat": "-10", "maxlat": "10", "loc": "f", "minobtime": "2008-01-01",
                 "maxobtime": "2009-12-31", "minsollon": "90", "maxsollon": "180"}
    wrapped = ode.build_params(preset="hirise-rdr", ls=(330, 30))
    assert [(w["minsollon"], w["maxsollon"]) for w in wrapped] == [("330", "360"), ("0", "30")]
    with pytest.raises(RemoteError, match="instrument host"):
        ode.build_params(iid="CTX")
    with pytest.raises(RemoteError, match="after end"):
        ode.build_params(preset="ctx-edr", start="2010-01-01", end="2009-01-01")


def test_paging_collects_all_pages(server):
    prods = [ode_product(i, server=server.base) for i in range(5)]

    def respond(req):
        off, lim = int(req.query["offset"]), int(req.query["limit"])
        return Reply.json(ode_answer(prods[off:off + lim]))

    server.add("/live2/", respond)
    pages = []
    got = ode.search(base_url=server.url("/live2/"), page_size=2, preset="crism-frt-mtrdr",
                     box=LonLatBox.from_user(9, 12, -1, 1), on_page=lambda n, k: pages.append((n, k)))
    assert [p.product_id for p in got] == [p["pdsid"] for p in prods]
    reqs = server.requests("/live2/")
    assert [(r.query["offset"], r.query["limit"]) for r in reqs] == [("0", "2"), ("2", "2"), ("4", "2")]
    assert all(r.query["westernlon"] == "9" and r.query["pt"] == "MTRDR" for r in reqs)
    assert pages == [(1, 2), (2, 4), (3, 5)]


def test_exact_multiple_of_page_size_ends_on_empty_page(server):
    prods = [ode_product(i) for i in range(4)]
    server.add("/live2/", lambda r: Reply.json(ode_answer(prods[int(r.query["offset"]):][:2])))
    got = ode.search(base_url=server.url("/live2/"), page_size=2, preset="ctx-edr")
    assert len(got) == 4 and len(server.requests()) == 3  # 2 + 2 + "No Products Found"


def test_typed_parse(server):
    raw = ode_product(7, lon=359.95, size=0.1, t="2008-01-14T10:00:00.000", ls=123.5, server=server.base)
    server.add("/live2/", Reply.json(ode_answer([raw])))  # a single product: an object, not a list
    (p,) = ode.search(base_url=server.url("/live2/"), preset="crism-mtrdr", with_files=True)
    assert server.requests()[0].query["results"] == "opmf"
    assert p.product_id == raw["pdsid"] and p.ode_id == "1007" and p.instrument == "CRISM"
    assert p.start_time == datetime(2008, 1, 14, 10, 0, tzinfo=UTC)
    assert p.observation_time == datetime(2008, 1, 14, 10, 1, tzinfo=UTC)
    assert p.solar_longitude == 123.5
    assert p.bbox == pytest.approx((359.95, 0.0, 360.05, 0.1))
    assert p.footprint["type"] == "Polygon"
    assert p.footprint["coordinates"][0][0] == pytest.approx([-0.05, 0.0])
    assert [f.kind for f in p.files] == ["Product", "Product", "Browse"]
    assert p.files[0].size_hint == 2560 and p.files[0].size is None
    assert p.files[0].url.endswith(".img")


def test_empty_result_and_ode_error(server):
    server.add("/live2/", [Reply.json(ode_answer([])), Reply.json(ode_error("Invalid IIPT set: MRO/CTXX/EDR"))])
    assert ode.search(base_url=server.url("/live2/"), preset="ctx-edr") == []
    with pytest.raises(RemoteError, match="ODE error: Invalid IIPT set"):
        ode.search(base_url=server.url("/live2/"), ihid="MRO", iid="CTXX", pt="EDR")


def test_http_500_then_success_and_404(server):
    server.add("/live2/", [Reply(500, b"oops"), Reply(503, b"busy"), Reply.json(ode_answer([ode_product(1)]))])
    got = ode.search(base_url=server.url("/live2/"), preset="ctx-edr", backoff=0.01)
    assert len(got) == 1 and len(server.requests()) == 3
    with pytest.raises(RemoteError, match="HTTP 404"):
        ode.search(base_url=server.url("/nowhere/"), preset="ctx-edr", backoff=0.01)


def test_wrapped_ls_merges_two_queries(server):
    a, b = ode_product(1, ls=340), ode_product(2, ls=10)
    server.add("/live2/", lambda r: Reply.json(ode_answer([a] if r.query["minsollon"] == "330" else [b, a])))
    got = ode.search(base_url=server.url("/live2/"), preset="hirise-rdr", ls=(330, 30))
    assert sorted(p.ode_id for p in got) == ["1001", "1002"]


def test_product_files_query(server):
    metas = [ode_product(i, files=False) for i in range(3)]
    with_files = [ode_product(i, server=server.base) for i in range(3)]
    server.add("/live2/", lambda r: Reply.json(ode_answer(metas if r.query["results"] == "opm" else
                                                          [w for w in with_files
                                                           if w["ode_id"] in r.query["odeid"].split("|")])))
    found = ode.search(base_url=server.url("/live2/"), preset="crism-mtrdr")
    assert all(not p.files for p in found)
    filled = ode.product_files(found, base_url=server.url("/live2/"), batch=2)
    assert [len(p.files) for p in filled] == [3, 3, 3]
    q = [r.query for r in server.requests() if r.query["results"] == "opf"]
    assert [x["odeid"] for x in q] == ["1000|1001", "1002"]


def test_results_file_round_trip(tmp_path, server):
    server.add("/live2/", Reply.json(ode_answer([ode_product(i, server=server.base) for i in range(2)])))
    got = ode.search(base_url=server.url("/live2/"), preset="crism-mtrdr")
    path = save_results(tmp_path / "r.json", got, "ode", {"preset": "crism-mtrdr"})
    assert load_results(path) == got
