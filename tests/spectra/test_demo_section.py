"""The spectra demo section runs and reports identical round trips."""

from __future__ import annotations

import time

from orbitml.report.demo import DemoContext
from orbitml.spectra.demo import section


def test_spectra_demo_section(tmp_path):
    ctx = DemoContext(out=tmp_path, quick=True)
    t0 = time.perf_counter()
    section(ctx)
    assert time.perf_counter() - t0 < 60  # generous bound, not a benchmark
    sec = ctx.report.sections[-1]
    assert sec.title == "Spectral libraries and mineral spectra"
    assert "read back identical: True" in sec.text and len(sec.figures) == 2
    assert (tmp_path / "spectra" / "families_crism.sli").exists()
    assert (tmp_path / "spectra" / "families_crism.hdr").exists()
    html = ctx.report.to_html()
    assert "co2_ice" in html and "fe_mg_smectite" in html
