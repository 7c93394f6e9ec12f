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
    "orbitml.spectra.demo",
    "orbitml.unmix.demo",
    "orbitml.tiling.demo",
    "orbitml.crism.demo",
    "orbitml.crism.demo_params",
    "orbitml.cosmic.demo",
    "orbitml.minmap.demo",
    "orbitml.pan2spec.demo",
    "orbitml.ice.demo",
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


def run_demo(out: Path, quick: bool = False, seed: int = 0, only: list[str] | None = None):
    """Run the demo sections; a failing section is reported in the HTML and the run goes on.

    Returns (report path, [(section, "ok" | "failed", seconds)]).
    """
    import importlib
    import time
    import traceback

    from orbitml.io.provenance import write_run_info

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, quick=quick, seed=seed)
    results = []
    for modname in SECTIONS:
        if only and not any(o in modname for o in only):
            continue
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name and (modname == exc.name or modname.startswith(exc.name + ".")):
                continue  # that workflow is not built yet
            raise
        t0 = time.perf_counter()
        try:
            mod.section(ctx)
            status = "ok"
        except Exception:  # keep the other sections; show the failure in the report
            status = "failed"
            ctx.report.add_section(f"{modname} (failed)", traceback.format_exc())
        results.append((modname, status, time.perf_counter() - t0))
    ctx.report.add_section(
        "Run summary",
        tables=[("sections", [{"section": n, "status": s, "seconds": round(t, 1)} for n, s, t in results])],
    )
    path = ctx.report.write(out / "report.html")
    write_run_info(out, "orbitml demo", {"quick": quick, "only": only or []}, seed=seed)
    return path, results
