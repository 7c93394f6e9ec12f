"""`orbitml demo` writes a self-contained HTML report with provenance."""

from __future__ import annotations

import json

from orbitml.cli.main import cli_run


def test_demo_scene_section(tmp_path):
    out = tmp_path / "demo"
    assert cli_run(["demo", "--out", str(out), "--quick", "--only", "demo_scene"]) == 0
    html = (out / "report.html").read_text()
    assert "Scene model and I/O" in html and "Both copies identical: True" in html
    assert html.count("data:image/png;base64,") >= 3
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 0 and run["versions"]["orbitml"]
    assert (out / "scene" / "simulated.img").exists() and (out / "scene" / "simulated.hdr").exists()


def test_demo_skips_workflows_not_built(tmp_path, monkeypatch):
    from orbitml.report import demo

    monkeypatch.setattr(demo, "SECTIONS", ["orbitml.nosuchworkflow.demo", "orbitml.report.demo_scene"])
    path, results = demo.run_demo(tmp_path / "d", quick=True)
    assert [r[0] for r in results] == ["orbitml.report.demo_scene"] and results[0][1] == "ok"
    assert "failed" not in path.read_text()
