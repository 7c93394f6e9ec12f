"""`orbitml remote ...` end to end against the local replay server."""

from __future__ import annotations

import hashlib
import json

import pytest

from orbitml.cli.main import cli_run
from orbitml.remote.records import load_results

from ..conftest import shared_file
from .conftest import Reply, file_responder
from .ode_data import ode_answer, ode_error, ode_product
from .test_archives import A, zenodo_doc


def serve_ode(server, prods):
    server.add("/live2/", lambda r: Reply.json(ode_answer(prods[int(r.query["offset"]):][:int(r.query["limit"])])))


def test_search_get_dry_run_and_cache(server, tmp_path, capsys):
    prods = [ode_product(i, server=server.base) for i in range(3)]
    serve_ode(server, prods)
    for p in prods:
        for f in p["Product_files"]["Product_file"]:
            server.add(f["URL"].replace(server.base, ""), file_responder(f["FileName"].encode() * 100))
    res = tmp_path / "crism.json"
    rc = cli_run(["remote", "search", "--preset", "crism-frt-mtrdr", "--west", "-2", "--east", "5", "--south", "-10",
                  "--north", "10", "--ls-min", "330", "--ls-max", "30", "--page-size", "2", "--out", str(res),
                  "--base-url", server.url("/live2/")])
    assert rc == 0
    q = server.requests("/live2/")[0].query
    assert (q["westernlon"], q["easternlon"], q["pdsid"], q["results"]) == ("358", "5", "FRT*", "opmf")
    assert {r.query["minsollon"] for r in server.requests("/live2/")} == {"330", "0"}
    assert len(load_results(res)) == 3 and (tmp_path / "crism.json.run.json").is_file()
    n = len(server.requests())
    cache = tmp_path / "cache"
    capsys.readouterr()
    rc = cli_run(["remote", "get", str(res), "--cache", str(cache), "--kind", "Product", "--dry-run", "--json"])
    assert rc == 0 and len(server.requests()) == n  # the dry run asks nothing
    plan = json.loads(capsys.readouterr().out)
    assert plan["to_fetch"] == 6 and plan["to_fetch_bytes"] == 3 * (2560 + 1024)
    rc = cli_run(["remote", "get", str(res), "--cache", str(cache), "--kind", "Product", "--json"])
    got = json.loads(capsys.readouterr().out)
    assert rc == 0 and {g["status"] for g in got} == {"downloaded"}
    name = prods[0]["Product_files"]["Product_file"][0]["FileName"]
    assert (cache / "ode" / prods[0]["pdsid"] / name).read_bytes() == name.encode() * 100
    n = len(server.requests())
    rc = cli_run(["remote", "fetch", str(res), "--cache", str(cache), "--kind", "product", "--json"])
    assert rc == 0 and {g["status"] for g in json.loads(capsys.readouterr().out)} == {"cached"}
    assert len(server.requests()) == n


def test_search_errors_are_one_line(server, capsys):
    server.add("/live2/", Reply.json(ode_error("Invalid product type")))
    rc = cli_run(["remote", "search", "--ihid", "MRO", "--iid", "CTX", "--pt", "XX", "--base-url",
                  server.url("/live2/")])
    err = capsys.readouterr().err
    assert rc == 2 and "ODE error: Invalid product type" in err and "Traceback" not in err
    rc = cli_run(["remote", "search", "--preset", "ctx-edr", "--west", "1"])
    assert rc == 2 and "needs all of" in capsys.readouterr().err
    assert len(server.requests()) == 1  # a usage error touches no network


def test_count_and_get_by_pdsid(server, tmp_path, capsys):
    prods = [ode_product(i, server=server.base) for i in range(2)]

    def respond(r):
        if r.query["results"] == "c":
            return Reply.json({"ODEResults": {"Status": "Success", "Count": "42"}})
        return Reply.json(ode_answer([p for p in prods if p["pdsid"] == r.query.get("pdsid")]))

    server.add("/live2/", respond)
    assert cli_run(["remote", "search", "--preset", "ctx-edr", "--count", "--json",
                    "--base-url", server.url("/live2/")]) == 0
    assert json.loads(capsys.readouterr().out) == {"count": 42}
    pid = prods[1]["pdsid"]
    rc = cli_run(["remote", "get", "--pdsid", pid, "--dry-run", "--json", "--cache", str(tmp_path / "c"),
                  "--base-url", server.url("/live2/")])
    assert rc == 0
    plan = json.loads(capsys.readouterr().out)
    assert [f["path"].rsplit("/", 2)[-2] for f in plan["files"]] == [pid] * 3
    q = server.requests("/live2/")[-1].query
    assert (q["results"], q["pdsid"], q["target"]) == ("opf", pid, "mars")
    assert cli_run(["remote", "get", "--pdsid", "NOPE", "--base-url", server.url("/live2/")]) == 2
    assert "lists no files for NOPE" in capsys.readouterr().err


def test_search_without_files_then_get_asks_the_files_query(server, tmp_path, capsys):
    metas = [ode_product(i, files=False) for i in range(2)]
    full = [ode_product(i, server=server.base) for i in range(2)]
    server.add("/live2/", lambda r: Reply.json(ode_answer(
        metas if r.query["results"] == "opm" else [f for f in full if f["ode_id"] in r.query["odeid"].split("|")])))
    res = tmp_path / "m.json"
    assert cli_run(["remote", "search", "--preset", "crism-mtrdr", "--no-files", "--out", str(res),
                    "--base-url", server.url("/live2/")]) == 0
    capsys.readouterr()
    assert cli_run(["remote", "get", str(res), "--dry-run", "--json", "--cache", str(tmp_path / "c"),
                    "--base-url", server.url("/live2/")]) == 0
    assert json.loads(capsys.readouterr().out)["to_fetch"] == 6
    assert server.requests("/live2/")[-1].query["odeid"] == "1000|1001"


def test_pair_cli(tmp_path, capsys):
    from orbitml.remote.records import save_results

    from .test_pairing import C1, C2, CTX

    save_results(tmp_path / "crism.json", [C1, C2], "ode")
    save_results(tmp_path / "ctx.json", CTX, "ode")
    rc = cli_run(["remote", "pair", str(tmp_path / "crism.json"), str(tmp_path / "ctx.json"),
                  "--out", str(tmp_path / "pairs.csv"), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["ctx_id"] for p in doc["pairs"]] == ["X_full2", "X_full", "X_anti", "X_360"]
    assert (tmp_path / "pairs.geojson").is_file() and (tmp_path / "pairs.csv.run.json").is_file()
    rc = cli_run(["remote", "pair", str(tmp_path / "crism.json"), str(tmp_path / "ctx.json"),
                  "--out", str(tmp_path / "pairs.csv")])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err


def test_zenodo_cli(server, tmp_path, capsys):
    server.add("/api/records/13338091", Reply.json(zenodo_doc(server.url(""))))
    server.add("/api/records/13338091/files/CRISM_labeled_pixels_ratioed.zip/content", file_responder(A))
    rc = cli_run(["remote", "zenodo", "10.5281/zenodo.13338091", "--api", server.url("/api"), "--json"])
    rec = json.loads(capsys.readouterr().out)
    assert rc == 0 and rec["files"][0]["md5"] == hashlib.md5(A).hexdigest()
    rc = cli_run(["remote", "zenodo", "13338091", "--api", server.url("/api"), "--get", "--name", "zip$",
                  "--cache", str(tmp_path / "c"), "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)[0]["status"] == "downloaded"
    assert (tmp_path / "c" / "zenodo" / "13338091" / "CRISM_labeled_pixels_ratioed.zip").read_bytes() == A


def test_mdis_cli_writes_results(tmp_path):
    rc = cli_run(["remote", "mdis", "EN0108828322M", "--date", "2008-01-14", "--out", str(tmp_path / "m.json"),
                  "--json"])
    assert rc == 0
    (p,) = load_results(tmp_path / "m.json")
    assert p.files[0].url.endswith("MSGRMDS_1001/DATA/2008_014/EN0108828322M.IMG")


def test_fetched_real_product_opens_with_info(server, tmp_path, capsys):
    """What `remote get` writes keeps the archive's name and opens with `orbitml info` unchanged."""
    src = shared_file("crism/frt0000932c_07_if164j_mtr3_subsampled.tif")
    data = src.read_bytes()
    server.add("/data/" + src.name, file_responder(data, cut_first=len(data) // 3))
    from orbitml.remote.records import Product, RemoteFile, save_results

    prod = Product(source="ode", product_id="FRT0000932C_07_IF164J_MTR3",
                   files=[RemoteFile(url=server.url("/data/" + src.name), name=src.name, size=len(data),
                                     sha256=hashlib.sha256(data).hexdigest())])
    save_results(tmp_path / "r.json", [prod], "ode")
    assert cli_run(["remote", "get", str(tmp_path / "r.json"), "--cache", str(tmp_path / "c"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "resumed"
    path = tmp_path / "c" / "ode" / prod.product_id / src.name
    assert cli_run(["info", str(path), "--json"]) == 0
    (d,) = json.loads(capsys.readouterr().out)
    assert d["bands"] == 489 and "Mars" in d["crs"]  # the real MTRDR subset, georeferenced, as archived
    assert path.read_bytes() == data


@pytest.mark.parametrize("args", [["remote", "get"], ["remote", "zenodo", "10.1000/abc"],
                                  ["remote", "mdis", "EN0108828322M", "--date", "2008-01-14", "--date", "2008-01-15"]])
def test_usage_errors(args, capsys):
    assert cli_run(args) == 2
    assert "error" in capsys.readouterr().err


def test_fetched_folder_feeds_cosmic_detect(server, tmp_path, capsys):
    """A fetched product folder (with orbitml's hidden record beside the file) feeds `cosmic detect`."""
    src = shared_file("ccd/gmos_S20190808S0048_cutout.fits")
    data = src.read_bytes()
    server.add("/f/" + src.name, file_responder(data))
    from orbitml.remote.records import Product, RemoteFile, save_results

    prod = Product(source="url", product_id="gmos", files=[
        RemoteFile(url=server.url("/f/" + src.name), name=src.name, md5=hashlib.md5(data).hexdigest())])
    save_results(tmp_path / "r.json", [prod], "url")
    assert cli_run(["remote", "get", str(tmp_path / "r.json"), "--cache", str(tmp_path / "c"), "--json"]) == 0
    folder = tmp_path / "c" / "url" / "gmos"
    assert (folder / ".orbitml-product.json").is_file()
    assert cli_run(["cosmic", "detect", str(folder), "--out", str(tmp_path / "det")]) == 0
    assert (tmp_path / "det" / (src.stem + ".cosmic.fits")).is_file()


def test_stac_cli_bbox_conventions(server, tmp_path, capsys):
    from .test_stac import setup

    setup(server)
    rc = cli_run(["remote", "stac", "--url", server.url("/"), "--collection", "mro_hirise_uncontrolled_observations",
                  "--bbox", "350,-5,10,5", "--query", "gsd<1", "--max", "2", "--out", str(tmp_path / "s.json")])
    assert rc == 0 and len(load_results(tmp_path / "s.json")) == 2
    body = json.loads(server.requests("/search")[0].body)
    assert body["bbox"] == [-10.0, -5.0, 10.0, 5.0]  # 0-360 box across 0 -> -180..180 for STAC
    assert body["query"] == {"gsd": {"lt": 1}}
    capsys.readouterr()
    rc = cli_run(["remote", "stac", "--url", server.url("/"), "--bbox", "10,-5,5,5", "--lon-convention", "west",
                  "--max", "1", "--json"])
    assert rc == 0 and len(json.loads(capsys.readouterr().out)) == 1
    assert json.loads(server.requests("/search")[-1].body)["bbox"] == [-10.0, -5.0, -5.0, 5.0]
