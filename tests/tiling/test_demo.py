import json

from orbitml.report.demo import DemoContext
from orbitml.tiling.demo import section


def test_demo_section_quick(tmp_path):
    ctx = DemoContext(out=tmp_path, quick=True)
    section(ctx)
    sec = ctx.report.sections[-1]
    assert "identical bits: True" in sec.text
    assert len(sec.figures) == 3
    html = sec.tables[0][1]
    assert "reflect-padded operator + margin</td><td>0</td><td>0</td>" in html
    doc = json.loads((tmp_path / "tiling" / "tiles.geojson").read_text())
    assert "crs" in doc and doc["features"]
    assert (tmp_path / "tiling" / "run.json").exists()
