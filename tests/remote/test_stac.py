"""STAC item search through pystac-client against the local replay server (landing page + paged /search)."""

from __future__ import annotations

import hashlib
import json

import pytest

from orbitml.remote import download, stac
from orbitml.remote.records import RemoteError

from .conftest import Reply, file_responder

DATA = b"COG" * 5000
SHA = hashlib.sha256(DATA).hexdigest()


def landing(base: str) -> dict:
    return {
        "type": "Catalog", "id": "test-stac", "stac_version": "1.0.0", "description": "replay",
        "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
                       "https://api.stacspec.org/v1.0.0/item-search#query"],
        "links": [{"rel": "self", "href": base + "/", "type": "application/json"},
                  {"rel": "root", "href": base + "/", "type": "application/json"},
                  {"rel": "search", "href": base + "/search", "type": "application/geo+json", "method": "POST"},
                  {"rel": "search", "href": base + "/search", "type": "application/geo+json", "method": "GET"}],
    }


def item(base: str, i: int) -> dict:
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": f"ESP_0{i}_1234_RED",
        "collection": "mro_hirise_uncontrolled_observations",
        "geometry": {"type": "Polygon", "coordinates": [[[137.3, -4.6], [137.4, -4.6], [137.4, -4.5],
                                                         [137.3, -4.5], [137.3, -4.6]]]},
        "bbox": [137.3, -4.6, 137.4, -4.5],
        "properties": {"datetime": f"2012-08-0{i}T12:00:00Z", "platform": "MRO", "instruments": ["HiRISE"],
                       "ssys:targets": ["Mars"], "ssys:solar_longitude": 150.0 + i},
        "assets": {
            "image": {"href": f"{base}/data/ESP_0{i}_1234_RED.tif", "roles": ["data"],
                      "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                      "file:size": len(DATA), "file:checksum": "1220" + SHA},
            "thumbnail": {"href": f"{base}/data/ESP_0{i}_thumb.jpg", "roles": ["thumbnail"]},
        },
        "links": [],
    }


def setup(server):
    base = server.base
    server.add("/", Reply.json(landing(base)))

    def search(req):
        body = json.loads(req.body or b"{}")
        page2 = body.get("token") == "p2"
        feats = [item(base, i) for i in ((3,) if page2 else (1, 2))]
        links = [] if page2 else [{"rel": "next", "href": base + "/search", "method": "POST",
                                   "body": {"token": "p2"}, "merge": True}]
        return Reply.json({"type": "FeatureCollection", "features": feats, "links": links})

    server.add("/search", search, method="POST")


def test_stac_search_across_pages(server):
    setup(server)
    got = stac.search(url=server.url("/"), collections=["mro_hirise_uncontrolled_observations"],
                      bbox=(137.0, -5.0, 137.5, -4.4), datetime="2012-08-01/2012-08-31",
                      query={"ssys:solar_longitude": {"gt": 100}}, limit=2, backoff=0.01)
    assert [p.product_id for p in got] == ["ESP_01_1234_RED", "ESP_02_1234_RED", "ESP_03_1234_RED"]
    posts = [json.loads(r.body) for r in server.requests("/search")]
    assert len(posts) == 2
    first = posts[0]
    assert first["collections"] == ["mro_hirise_uncontrolled_observations"]
    assert first["bbox"] == [137.0, -5.0, 137.5, -4.4]
    assert first["datetime"].startswith("2012-08-01T00:00:00") and "2012-08-31T23:59:59" in first["datetime"]
    assert first["query"] == {"ssys:solar_longitude": {"gt": 100}}
    assert posts[1]["token"] == "p2" and posts[1]["collections"] == first["collections"]  # merged body
    p = got[0]
    assert p.source == "stac" and p.instrument == "HiRISE" and p.target == "Mars"
    assert p.solar_longitude == 151.0 and p.footprint["type"] == "Polygon"
    assert [f.kind for f in p.files] == ["image"]  # role "data" only
    assert p.files[0].sha256 == SHA and p.files[0].size == len(DATA)
    assert p.files[0].name == "ESP_01_1234_RED.tif"


def test_stac_assets_by_key_and_same_download_path(server, cache):
    setup(server)
    server.add("/data/ESP_01_1234_RED.tif", file_responder(DATA))
    got = stac.search(url=server.url("/"), max_items=1, keys=["image", "thumbnail"], backoff=0.01)
    assert len(got) == 1 and [f.kind for f in got[0].files] == ["image", "thumbnail"]
    prod = got[0].model_copy(update={"files": got[0].files[:1]})
    p = download.plan([prod], cache)
    (res,) = download.fetch(p, progress=False, backoff=0.01)
    assert res.status == "downloaded"
    assert (cache / "stac" / "ESP_01_1234_RED" / "ESP_01_1234_RED.tif").read_bytes() == DATA


def test_stac_errors(server):
    server.add("/", Reply.json(landing(server.base)))
    server.add("/search", Reply(400, b'{"code":"BadRequest","description":"bad bbox"}'), method="POST")
    with pytest.raises(RemoteError, match="STAC"):
        stac.search(url=server.url("/"), retries=0)
    with pytest.raises(RemoteError, match="bbox"):
        stac.search(url=server.url("/"), bbox=(0, 10, 1, 5))


def test_multihash():
    assert stac.parse_multihash("1220" + "ab" * 32) == (None, "ab" * 32)
    assert stac.parse_multihash("d510" + "cd" * 16) == ("cd" * 16, None)
    assert stac.parse_multihash("1114" + "00" * 20) == (None, None)
