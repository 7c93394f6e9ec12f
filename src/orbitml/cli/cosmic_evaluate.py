"""``orbitml cosmic evaluate``: detection products against bounding-box annotations (Pascal VOC XML)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from orbitml.cli._common import console


def evaluate(
    products: list[Path] = typer.Argument(..., help="Folders of *.cosmic.fits products (from `cosmic detect`) "
                                                    "or product files."),
    boxes: list[Path] = typer.Option(..., "--boxes", help="Pascal VOC XML annotation files or folders of them "
                                                          "(repeatable); paired by <filename>."),
    iou: float = typer.Option(0.3, "--iou", min=0.0, max=1.0, help="Overlap rule: a detected region's box "
                                                                    "matches an annotated box at IoU >= this."),
    out: Path = typer.Option(None, "--out", help="Per-frame table as CSV (a <name>.run.json goes beside it)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the per-frame rows and totals as JSON."),
) -> None:
    """Box recall and precision of the detected hits against annotated boxes, per frame and in total."""
    import csv

    from rich.table import Table

    from orbitml.cosmic.catalog import find_products
    from orbitml.cosmic.evaluate import evaluate_boxes, find_annotations
    from orbitml.errors import OrbitmlInputError
    from orbitml.io.atomic import atomic_path, check_writable
    from orbitml.io.provenance import write_run_info

    if out is not None:
        if out.suffix.lower() != ".csv":
            raise OrbitmlInputError("--out must end in .csv", out)
        check_writable(out, overwrite)
    prods = find_products(products)
    anns = find_annotations(boxes)
    rows, tot, notes = evaluate_boxes(prods, anns, iou=iou)
    for n in notes:
        print(f"orbitml: note: {n}", file=sys.stderr)
    if not rows:
        raise OrbitmlInputError(f"no product could be paired with an annotation ({len(prods)} products, "
                                f"{len(anns)} annotation files)")
    if out is not None:
        with atomic_path(out, overwrite=overwrite) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
                w.writerow({"frame": "TOTAL", "annotation": "", **{k: tot[k] for k in rows[0] if k in tot}})
        write_run_info(out.parent, "orbitml cosmic evaluate", {"iou": iou, "rule": tot["rule"], "total": tot,
                                                               "notes": notes},
                       inputs=[str(p) for p in prods] + [str(a) for a in anns], name=f"{out.stem}.run.json")
    if as_json:
        print(json.dumps({"rows": rows, "total": tot, "notes": notes}, indent=2, default=float))
        return
    table = Table(title=f"box recall / precision ({tot['rule']})")
    for col in ("frame", "annotated", "detected", "matched", "recall", "precision"):
        table.add_column(col)
    for r in [*rows, {"frame": "TOTAL", **tot}]:
        table.add_row(str(r["frame"]), str(r["n_annotated"]), str(r["n_detected"]), str(r["n_matched"]),
                      f"{r['recall']:.3f}", f"{r['precision']:.3f}")
    console.print(table)
    if out is not None:
        console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
