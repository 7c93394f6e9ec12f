"""The unmixing demo section runs in quick mode and reports its numbers."""

from __future__ import annotations

from orbitml.report.demo import DemoContext
from orbitml.scene import valid_mask


def test_unmix_demo_section_quick(tmp_path):
    from orbitml.io import open_scene
    from orbitml.unmix.demo import section

    ctx = DemoContext(out=tmp_path, quick=True, seed=0)
    section(ctx)
    sec = ctx.report.sections[-1]
    assert sec.title.startswith("Unmixing")
    assert len(sec.figures) == 3 and len(sec.tables) == 2
    assert "HySime" in sec.tables[0][1] and "SAD" in sec.tables[0][1]
    ab = open_scene(tmp_path / "unmix" / "abundances_vca.img")
    assert ab.sizes["band"] == 5 and 0.9 < float(valid_mask(ab).mean()) < 1.0
