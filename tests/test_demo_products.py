"""Every product the demo writes reads back with the standard libraries, with names and class tables,
and leaks neither a temporary file name nor an absolute path of the machine it ran on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orbitml.cli.main import cli_run

SECTIONS = ["demo_scene", "spectra.demo", "tiling.demo", "crism.demo"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    args = ["demo", "--quick", "--out", str(out)]
    for s in SECTIONS:
        args += ["--only", s]
    assert cli_run(args) == 0
    return out


def _leaks(text: str, root: Path) -> list[str]:
    bad = []
    if ".tmp" in text:
        bad.append("temporary name")
    if str(root) in text or "/tmp/" in text:
        bad.append("absolute path")
    return bad


def test_rasters_read_back_clean(demo_dir):
    import rasterio

    rasters = [p for p in demo_dir.rglob("*") if p.suffix.lower() in (".tif", ".img")]
    assert len(rasters) >= 4
    for p in rasters:
        with rasterio.open(p) as ds:
            ds.read(1, window=((0, 1), (0, 1)))
            tags = json.dumps({"all": ds.tags(), **{str(b): ds.tags(b) for b in range(1, ds.count + 1)},
                               "desc": list(ds.descriptions)})
            assert not _leaks(tags, demo_dir), (p, _leaks(tags, demo_dir))
            if "class" in p.stem:
                assert ds.colormap(1), f"{p} has no colour table"
                names = ds.tags().get("CLASS_NAMES")
                if p.suffix == ".tif":
                    assert names and len(json.loads(names)) >= 2, p
        hdr = p.with_suffix(".hdr")
        if hdr.exists():
            text = hdr.read_text()
            assert not _leaks(text, demo_dir), (hdr, _leaks(text, demo_dir))
            if "class" in p.stem:
                assert "class names" in text and "class lookup" in text


def test_libraries_and_tables_read_back(demo_dir):
    from orbitml.spectra import read_library

    for p in demo_dir.rglob("*.sli"):
        lib = read_library(p)
        assert len(lib) > 0 and all(lib.names)
    for p in demo_dir.rglob("*.geojson"):
        doc = json.loads(p.read_text())
        assert doc["type"] == "FeatureCollection"
    for p in demo_dir.rglob("*.json"):
        json.loads(p.read_text())  # valid JSON (no NaN)
    assert not list(demo_dir.rglob(".*tmp*")), "temporary files left behind"
