"""A self-contained HTML report: sections of text, figures (embedded PNG) and tables."""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from orbitml import __version__


@dataclass
class Section:
    title: str
    text: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, base64 PNG)
    tables: list[tuple[str, str]] = field(default_factory=list)  # (caption, html)


def _fig_to_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def format_number(v: float, floatfmt: str = ".4g") -> str:
    """A float for people: NaN as "n/a", and never a rounded 1 (or 0) that hides a difference.

    ``0.99996`` with 4 significant digits would print as "1"; it prints with as many digits as
    needed to differ from the round value (up to 12), so "accuracy 1" means exactly 1.
    """
    import math

    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    text = format(v, floatfmt)
    if float(text) != v and float(text) in (0.0, 1.0, -1.0):
        for digits in range(5, 13):
            text = format(v, f".{digits}g")
            if float(text) not in (0.0, 1.0, -1.0):
                break
    return text


def table_html(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = ".4g") -> str:
    """HTML table from a list of dict rows."""
    rows = list(rows)
    if columns is None:
        columns = list(rows[0].keys()) if rows else []

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return format_number(v, floatfmt)
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Report:
    """Collects sections and writes one HTML file with everything embedded."""

    def __init__(self, title: str = "orbitml report"):
        self.title = title
        self.sections: list[Section] = []

    def add_section(
        self,
        title: str,
        text: str = "",
        figures: Iterable[tuple[str, Any]] = (),
        tables: Iterable[tuple[str, Sequence[Mapping[str, Any]] | str]] = (),
    ) -> Section:
        """Add a section. ``figures`` are (caption, matplotlib Figure); ``tables`` are (caption, rows or html).

        ``text`` is plain text (paragraphs separated by blank lines); it is escaped.
        """
        sec = Section(title=title, text=text)
        for cap, fig in figures:
            sec.figures.append((cap, _fig_to_b64(fig)))
        for cap, rows in tables:
            sec.tables.append((cap, rows if isinstance(rows, str) else table_html(rows)))
        self.sections.append(sec)
        return sec

    def to_html(self) -> str:
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title><style>",
            "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em;color:#222}",
            "h2{border-bottom:1px solid #ccc;margin-top:2em}figure{display:inline-block;margin:0.5em}",
            "figcaption{font-size:0.85em;color:#555}table{border-collapse:collapse;margin:0.5em 0;font-size:0.85em}",
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}",
            "nav a{margin-right:1em}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
            f"<p>orbitml {__version__}, generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}</p>",
            "<nav>" + "".join(f"<a href='#s{i}'>{html.escape(s.title)}</a>" for i, s in enumerate(self.sections)),
            "</nav>",
        ]
        for i, s in enumerate(self.sections):
            parts.append(f"<h2 id='s{i}'>{html.escape(s.title)}</h2>")
            for para in [p for p in s.text.split("\n\n") if p.strip()]:
                parts.append(f"<p>{html.escape(para)}</p>")
            for cap, tab in s.tables:
                parts.append(f"<h4>{html.escape(cap)}</h4>{tab}")
            for cap, b64 in s.figures:
                parts.append(
                    f"<figure><img src='data:image/png;base64,{b64}' alt='{html.escape(cap)}'>"
                    f"<figcaption>{html.escape(cap)}</figcaption></figure>"
                )
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, path: str | os.PathLike) -> Path:
        """Write atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(self.to_html(), encoding="utf-8")
        os.replace(tmp, path)
        return path
