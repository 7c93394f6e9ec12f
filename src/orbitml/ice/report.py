"""Batch products of ``orbitml ice scan``: the ranked summary CSV and the HTML summary."""

from __future__ import annotations

import base64
import csv
import html
from pathlib import Path
from typing import Any

from orbitml.io.atomic import atomic_path

__all__ = ["write_summary", "SUMMARY_FIELDS"]

SUMMARY_FIELDS = ["rank", "name", "status", "flagged", "paper_class", "n_positive", "n_corroborated", "max_prob",
                  "evidence", "chunks_kept", "chunks_dropped_black", "hot_pixels", "line_defects", "height", "width",
                  "rule", "threshold", "image", "error"]


def _ranked(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ok = [r for r in recs if r["status"] != "failed"]
    ok.sort(key=lambda r: (-float(r.get("evidence", 0)), r.get("name", "")))
    bad = [r for r in recs if r["status"] == "failed"]
    out = []
    for k, r in enumerate(ok, start=1):
        out.append({**r, "rank": k})
    out += [{**r, "rank": ""} for r in bad]
    return out


def write_summary(recs: list[dict[str, Any]], out: str | Path, card: dict[str, Any]) -> dict[str, Path]:
    """``scan_summary.csv`` (images ranked by evidence; failures listed last) and ``scan_summary.html``."""
    from orbitml.nn.weights import simulated_notice

    out = Path(out)
    notice = simulated_notice(card)
    rows = _ranked(recs)
    csv_path = out / "scan_summary.csv"
    with atomic_path(csv_path, overwrite=True) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        if notice:
            fh.write(f"# {notice}\n")
        wr = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
        wr.writeheader()
        for r in rows:
            wr.writerow({k: r.get(k, "") for k in SUMMARY_FIELDS})
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>orbitml ice scan</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:2px 6px;font-size:12px}.note{background:#fff3cd;padding:6px}</style></head><body>",
             "<h1>Ice scan summary</h1>",
             f"<p>Model <b>{html.escape(str(card.get('name')))}</b> ({html.escape(str(card.get('architecture')))}), "
             f"chunks of {card.get('chunking', {}).get('chunk')} px, threshold {card.get('threshold', 0.6)}. "
             "Images are ranked by evidence (corroborated positive chunks, then positive chunks, then the top "
             "probability).</p>"]
    if notice:
        parts.append(f"<p class='note'><b>NOTE:</b> {html.escape(notice)}</p>")
    parts.append("<table><tr>" + "".join(f"<th>{html.escape(f)}</th>" for f in SUMMARY_FIELDS[:-2]) + "</tr>")
    for r in rows:
        cells = []
        for f in SUMMARY_FIELDS[:-2]:
            v = r.get(f, "")
            cells.append(f"<td>{v:.3f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    bad = [r for r in rows if r["status"] == "failed"]
    if bad:
        parts.append("<h2>Images that could not be scanned</h2><ul>"
                     + "".join(f"<li>{html.escape(str(r.get('error')))}</li>" for r in bad) + "</ul>")
    parts.append("<h2>Heat maps</h2>")
    for r in rows:
        hm = r.get("heatmap")
        if hm and (out / hm).exists():
            b64 = base64.b64encode((out / hm).read_bytes()).decode("ascii")
            parts.append(f"<h3>{html.escape(r['name'])}</h3><img style='max-width:600px' "
                         f"src='data:image/png;base64,{b64}'>")
    parts.append("</body></html>")
    html_path = out / "scan_summary.html"
    with atomic_path(html_path, overwrite=True) as tmp:
        Path(tmp).write_text("\n".join(parts), encoding="utf-8")
    return {"csv": csv_path, "html": html_path}
