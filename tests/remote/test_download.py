"""Downloads against the local replay server: resume, retry, checksums, cache, dry run, atomicity, safety."""

from __future__ import annotations

import hashlib
import os

import pytest

from orbitml.remote import download
from orbitml.remote.records import Product, RemoteError, RemoteFile

from .conftest import Reply, file_responder

DATA = bytes(range(256)) * 400  # 102400 bytes
MD5 = hashlib.md5(DATA).hexdigest()
SHA = hashlib.sha256(DATA).hexdigest()


def product(server, names=("a.img",), md5=None, sha256=None, size=None, pid="P1") -> Product:
    return Product(source="url", product_id=pid,
                   files=[RemoteFile(url=server.url(f"/f/{n}"), name=n, md5=md5, sha256=sha256, size=size)
                          for n in names])


def run(server, cache, prods, **kw):
    p = download.plan(prods, cache)
    kw.setdefault("progress", False)
    kw.setdefault("backoff", 0.01)
    return p, download.fetch(p, **kw)


def test_plain_download_checks_and_cache_hit(server, cache):
    server.add("/f/a.img", file_responder(DATA))
    prod = product(server, md5=MD5, sha256=SHA, size=len(DATA))
    p, res = run(server, cache, [prod], products=[prod])
    assert [r.status for r in res] == ["downloaded"]
    out = cache / "url" / "P1" / "a.img"
    assert out.read_bytes() == DATA and not out.with_name("a.img.part").exists()
    assert (cache / "url" / "P1" / download.PRODUCT_RECORD).is_file()
    # second run: a cache hit, no request at all
    n = len(server.requests())
    p2, res2 = run(server, cache, [prod])
    assert [r.status for r in res2] == ["cached"] and p2.to_fetch == []
    assert len(server.requests()) == n


def test_resume_after_dropped_connection(server, cache):
    server.add("/f/a.img", file_responder(DATA, cut_first=30000))
    _, res = run(server, cache, [product(server, md5=MD5)])
    assert res[0].status == "resumed"
    assert (cache / "url" / "P1" / "a.img").read_bytes() == DATA
    reqs = server.requests("/f/a.img")
    assert len(reqs) == 2 and "range" not in reqs[0].headers
    assert reqs[1].headers["range"] == "bytes=30000-"


def test_interrupted_then_resumed_next_run(server, cache):
    # retries=0: the first run stops with a partial file, the next run resumes it with Range
    server.add("/f/a.img", file_responder(DATA, cut_first=40000))
    with pytest.raises(RemoteError, match="run again to resume"):
        run(server, cache, [product(server)], retries=0)
    part = cache / "url" / "P1" / "a.img.part"
    assert part.stat().st_size == 40000 and not (cache / "url" / "P1" / "a.img").exists()
    _, res = run(server, cache, [product(server)], retries=0)
    assert res[0].status == "resumed" and (cache / "url" / "P1" / "a.img").read_bytes() == DATA


def test_changed_file_is_not_spliced_onto_an_old_partial(server, cache):
    old, new = DATA, DATA[::-1]
    server.add("/f/a.img", file_responder(old, cut_first=30000, etag='"v1"'))
    with pytest.raises(RemoteError):
        run(server, cache, [product(server)], retries=0)
    server.add("/f/a.img", file_responder(new, etag='"v2"'))  # the archive replaced the file meanwhile
    _, res = run(server, cache, [product(server)], retries=0)
    last = server.requests("/f/a.img")[-1]
    assert last.headers["range"] == "bytes=30000-" and last.headers["if-range"] == '"v1"'
    assert res[0].status == "downloaded"  # the server sent the new file whole; nothing was spliced
    d = cache / "url" / "P1"
    assert (d / "a.img").read_bytes() == new and sorted(x.name for x in d.iterdir()) == ["a.img"]


def test_server_without_range_restarts_cleanly(server, cache):
    server.add("/f/a.img", file_responder(DATA, ranges=False, cut_first=5000))
    _, res = run(server, cache, [product(server, sha256=SHA)])
    assert res[0].status == "downloaded"  # the 200 answer replaced the partial file
    assert (cache / "url" / "P1" / "a.img").read_bytes() == DATA


def test_retry_on_503_then_success(server, cache):
    server.add("/f/a.img", file_responder(DATA, fail_first=2, fail_status=503))
    _, res = run(server, cache, [product(server)])
    assert res[0].status == "downloaded" and len(server.requests("/f/a.img")) == 3


def test_5xx_retries_exhausted(server, cache):
    server.add("/f/a.img", Reply(500, b"down"))
    with pytest.raises(RemoteError, match="HTTP 500"):
        run(server, cache, [product(server)], retries=2)
    assert len(server.requests("/f/a.img")) == 3


def test_checksum_mismatch_rejected_and_removed(server, cache):
    server.add("/f/a.img", file_responder(DATA))
    with pytest.raises(RemoteError, match="md5 mismatch.*rejected and removed"):
        run(server, cache, [product(server, md5="0" * 32)])
    d = cache / "url" / "P1"
    assert not (d / "a.img").exists() and not (d / "a.img.part").exists()


def test_size_mismatch_and_size_cap(server, cache):
    server.add("/f/a.img", file_responder(DATA))
    with pytest.raises(RemoteError, match="the record says"):
        run(server, cache, [product(server, size=len(DATA) + 1)])
    with pytest.raises(RemoteError, match="size cap"):
        run(server, cache, [product(server)], max_bytes=1000)
    d = cache / "url" / "P1"
    assert list(d.iterdir()) == []  # atomic: nothing half-written left behind


def test_slow_server_times_out(server, cache):
    server.add("/f/a.img", file_responder(DATA, delay=1.5))
    with pytest.raises(RemoteError, match="timed out"):
        run(server, cache, [product(server)], timeout=0.3, retries=1)
    assert not (cache / "url" / "P1" / "a.img").exists()


def test_dry_run_makes_no_request(server, cache):
    server.add("/f/a.img", file_responder(DATA))
    prods = [product(server, names=("a.img", "b.img"), size=10), product(server, pid="P2")]
    p = download.plan(prods, cache)
    assert len(p.to_fetch) == 3 and p.total_bytes() == (20, 1)
    assert server.requests() == [] and not cache.exists()


@pytest.mark.parametrize("name", ["../evil.img", "/etc/passwd", "a/../../x", "..", "a\\b.img", "c:x.img",
                                  "", "sub/./x", ".orbitml-product.json", "x.img.part", "~/x"])
def test_malicious_file_names_refused(server, cache, name):
    prod = Product(source="url", product_id="P1", files=[RemoteFile(url=server.url("/f/x"), name=name)])
    with pytest.raises(RemoteError, match="refusing"):
        download.plan([prod], cache)


def test_bad_product_id_url_and_links_refused(server, cache, tmp_path):
    with pytest.raises(RemoteError, match="refusing"):
        download.plan([Product(source="url", product_id="../x",
                               files=[RemoteFile(url=server.url("/f/a"), name="a")])], cache)
    with pytest.raises(Exception, match="only absolute http"):
        RemoteFile(url="file:///etc/passwd", name="passwd")
    # a link planted in the cache is never written through
    outside = tmp_path / "outside"
    outside.mkdir()
    (cache / "url").mkdir(parents=True)
    os.symlink(outside, cache / "url" / "P1")
    server.add("/f/a.img", file_responder(DATA))
    with pytest.raises(RemoteError, match="link"):
        run(server, cache, [product(server)])
    assert list(outside.iterdir()) == []


def test_parallel_batch_interrupted_resumes_where_it_stopped(server, cache):
    files = {f"f{i}.img": bytes([i]) * (50000 + i) for i in range(4)}
    for name, data in files.items():
        cut = 20000 if name == "f2.img" else None
        server.add(f"/f/{name}", file_responder(data, cut_first=cut))
    prod = Product(source="url", product_id="B", files=[
        RemoteFile(url=server.url(f"/f/{n}"), name=n, md5=hashlib.md5(d).hexdigest()) for n, d in files.items()])
    with pytest.raises(RemoteError, match="1 of 4 files failed"):
        run(server, cache, [prod], workers=3, retries=0)
    d = cache / "url" / "B"
    assert sorted(x.name for x in d.iterdir()) == ["f0.img", "f1.img", "f2.img.part", "f3.img"]
    before = {n: len(server.requests(f"/f/{n}")) for n in files}
    _, res = run(server, cache, [prod], workers=3, retries=0)
    assert sorted(r.status for r in res) == ["cached", "cached", "cached", "resumed"]
    after = {n: len(server.requests(f"/f/{n}")) for n in files}
    assert {n: after[n] - before[n] for n in files} == {"f0.img": 0, "f1.img": 0, "f2.img": 1, "f3.img": 0}
    assert server.requests("/f/f2.img")[-1].headers["range"] == "bytes=20000-"
    assert all((d / n).read_bytes() == data for n, data in files.items())


def test_cache_dir_env_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("ORBITML_CACHE", str(tmp_path / "c"))
    assert download.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ORBITML_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert download.default_cache_dir() == tmp_path / "x" / "orbitml"


def test_interrupt_stops_transfer_and_keeps_no_final_file(server, cache):
    import threading

    from orbitml.remote import _http

    server.add("/f/a.img", file_responder(DATA))
    (item,) = download.plan([product(server)], cache).items
    stop = threading.Event()
    stop.set()
    with _http.make_client(timeout=5) as cl, pytest.raises(download.Cancelled):
        download._download(cl, cache, item, retries=0, backoff=0.01, max_bytes=1 << 30, advance=lambda n: None,
                           stop=stop)
    assert not item.dest.exists()
