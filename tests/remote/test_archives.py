"""PDS archive path rules and Zenodo records against the local replay server."""

from __future__ import annotations

import hashlib

import pytest

from orbitml.remote import archives, download
from orbitml.remote.records import RemoteError

from .conftest import Reply, file_responder

A = b"spectra" * 3000
B = b"labels" * 100


def zenodo_doc(base: str, rid: int = 13338091) -> dict:
    return {
        "id": rid, "doi": f"10.5281/zenodo.{rid}",
        "metadata": {"title": "CRISM training data", "publication_date": "2024-08-20", "version": "1.0",
                     "license": {"id": "cc-by-4.0"}},
        "files": [
            {"id": "u1", "key": "CRISM_labeled_pixels_ratioed.zip", "size": len(A),
             "checksum": "md5:" + hashlib.md5(A).hexdigest(),
             "links": {"self": f"{base}/api/records/{rid}/files/CRISM_labeled_pixels_ratioed.zip/content"}},
            {"id": "u2", "key": "README.md", "size": len(B), "checksum": "md5:" + hashlib.md5(B).hexdigest(),
             "links": {"self": f"{base}/api/records/{rid}/files/README.md/content"}},
        ],
    }


@pytest.mark.parametrize(("ref", "rid"), [
    ("13338091", 13338091), (6855065, 6855065), ("10.5281/zenodo.6855065", 6855065),
    ("doi:10.5281/zenodo.6855065", 6855065), ("https://doi.org/10.5281/zenodo.6855065", 6855065),
    ("https://zenodo.org/records/13338091", 13338091), ("https://zenodo.org/record/13338091#files", 13338091),
])
def test_zenodo_ids(ref, rid):
    assert archives.zenodo_record_id(ref) == rid


def test_zenodo_bad_ids():
    for bad in ("10.1000/xyz123", "https://example.org/records/5", "zenodo"):
        with pytest.raises(RemoteError, match="Zenodo"):
            archives.zenodo_record_id(bad)


def test_zenodo_record_files_and_download(server, cache):
    base = server.url("")
    server.add("/api/records/13338091", Reply.json(zenodo_doc(base)))
    server.add("/api/records/13338091/files/CRISM_labeled_pixels_ratioed.zip/content", file_responder(A))
    server.add("/api/records/13338091/files/README.md/content", file_responder(B))
    rec = archives.zenodo_record("10.5281/zenodo.13338091", api=server.url("/api"))
    assert rec.product_id == "13338091" and rec.properties["title"] == "CRISM training data"
    assert [(f.name, f.size) for f in rec.files] == [("CRISM_labeled_pixels_ratioed.zip", len(A)),
                                                     ("README.md", len(B))]
    assert rec.files[0].md5 == hashlib.md5(A).hexdigest()
    res = download.fetch(download.plan([rec], cache), progress=False)
    assert {r.status for r in res} == {"downloaded"}
    assert (cache / "zenodo" / "13338091" / "CRISM_labeled_pixels_ratioed.zip").read_bytes() == A


def test_zenodo_checksum_from_record_is_enforced(server, cache):
    doc = zenodo_doc(server.url(""))
    doc["files"][1]["checksum"] = "md5:" + "f" * 32
    server.add("/api/records/13338091", Reply.json(doc))
    server.add("/api/records/13338091/files/README.md/content", file_responder(B))
    rec = archives.zenodo_record(13338091, api=server.url("/api"))
    with pytest.raises(RemoteError, match="md5 mismatch"):
        download.fetch(download.plan([rec], cache, names=["README"]), progress=False)
    assert not (cache / "zenodo" / "13338091" / "README.md").exists()


def test_zenodo_missing_record(server):
    server.add("/api/records/1", Reply.json({"status": 404, "message": "PID does not exist."}, status=404))
    with pytest.raises(RemoteError, match="HTTP 404"):
        archives.zenodo_record(1, api=server.url("/api"))


def test_mdis_edr_rule():
    # 2008-01-14 is day 014 of 2008; 2011-04-08 is day 098
    assert archives.mdis_edr_path("EN0108828322M", "2008-01-14") == "MSGRMDS_1001/DATA/2008_014/EN0108828322M.IMG"
    assert archives.mdis_edr_path("ew0211300000g.img", "2011-04-08T12:00:00") == \
        "MSGRMDS_1001/DATA/2011_098/EW0211300000G.IMG"
    p = archives.mdis_edr("EN0108828322M", "2008-01-14", base="https://pds.example/data/messenger/")
    assert p.files[0].url == "https://pds.example/data/messenger/MSGRMDS_1001/DATA/2008_014/EN0108828322M.IMG"
    assert p.files[0].name == "EN0108828322M.IMG" and p.instrument == "MDIS"
    with pytest.raises(RemoteError, match="MDIS EDR product id"):
        archives.mdis_edr_path("../EN0108828322M", "2008-01-14")
    with pytest.raises(RemoteError, match="outside the MESSENGER"):
        archives.mdis_edr_path("EN0108828322M", "1999-01-01")


def test_archive_product_refuses_escape():
    with pytest.raises(RemoteError, match="refusing"):
        archives.archive_product("https://pds.example/", "../../etc/passwd", "x")
    with pytest.raises(RemoteError, match="only absolute http"):
        archives.archive_product("ftp://pds.example/", "a/b.img", "b")
