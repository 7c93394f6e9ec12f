"""The demo: a registry of sections, each running one workflow on simulated data.

Each workflow provides ``orbitml.<workflow>.demo.section(ctx)``; the CLI runs them in order of
:data:`SECTIONS` and writes one HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orbitml.report.html import Report

# Modules that define `section(ctx: DemoContext) -> None`, in report order.
SECTIONS: list[str] = [
    "orbitml.report.demo_scene",
    "orbitml.unmix.demo",
    "orbitml.tiling.demo",
    "orbitml.crism.demo",
    "orbitml.crism.demo_params",
    "orbitml.cosmic.demo",
]


@dataclass
class DemoContext:
    out: Path  # folder for this run; a section writes into out / <its name>
    quick: bool = False  # keep the whole demo under two minutes on 2 cores
    seed: int = 0
    report: Report = field(default_factory=lambda: Report("orbitml demo"))

    def folder(self, name: str) -> Path:
        p = self.out / name
        p.mkdir(parents=True, exist_ok=True)
        return p
