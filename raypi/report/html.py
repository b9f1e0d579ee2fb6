"""Static HTML of the report: one self-contained ``index.html`` beside its figure files."""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

from raypi.report._plot import Figure

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1.5rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem;
     margin-top: 2.2rem; } h3 { margin-bottom: .3rem; }
.meta { color: #555; font-size: .92rem; }
nav { display: flex; flex-wrap: wrap; gap: .2rem 1.1rem; margin-top: .6rem; }
nav a { white-space: nowrap; }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9rem; color: #444; margin-top: .3rem; }
table { border-collapse: collapse; font-size: .88rem; margin: .6rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td { white-space: nowrap; }
td:last-child { white-space: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.missing { color: #8a5a00; font-size: .88rem; } .missing li { margin: .1rem 0; }
pre { background: #f7f7f7; padding: .8rem; overflow-x: auto; font-size: .82rem; }
details { margin: .4rem 0 1rem; } summary { cursor: pointer; color: #1f5fa8; }
"""


@dataclass(frozen=True)
class Section:
    """One ``<h2>`` section of the page."""

    anchor: str
    """Id used by the contents links."""
    title: str
    """Heading text."""
    body: str
    """Inner HTML (already escaped)."""


def escape(text: object) -> str:
    """Return ``text`` as HTML-escaped string."""
    return html.escape(str(text), quote=True)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f'<td class="num">{"–" if pd.isna(value) else f"{value:.4g}"}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    return f"<td>{'–' if value is None or value is pd.NA else escape(value)}</td>"


def table_html(frame: pd.DataFrame, empty: str = "Nothing to show.") -> str:
    """Return an HTML table of ``frame`` (every cell escaped), or a note when it is empty.

    Args:
        frame: The table; its columns become the header.
        empty: Text shown instead of an empty table.

    Returns:
        HTML markup.
    """
    if frame is None or frame.empty:
        return f"<p class='meta'>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(column)}</th>" for column in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(_cell(value.item() if hasattr(value, "item") else value) for value in row)
        + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def notes_html(notes: list[str]) -> str:
    """Return a list of missing-data notes (empty string when there are none)."""
    if not notes:
        return ""
    items = "".join(f"<li>{escape(note)}</li>" for note in notes)
    return f"<ul class='missing'><li><b>Missing data:</b></li>{items}</ul>"


def figure_html(figure: Figure, image: str | None, data: str | None) -> str:
    """Return a ``<figure>`` with the image, its caption, a link to its numbers and notes.

    Args:
        figure: The rendered figure.
        image: Path of the PNG relative to ``index.html`` (None: no image).
        data: Path of the CSV relative to ``index.html`` (None: no data link).

    Returns:
        HTML markup.
    """
    parts = [f"<figure id='{escape(figure.name)}'>"]
    if image:
        parts.append(f"<img src='{escape(image)}' alt='{escape(figure.title)}'>")
    caption = escape(figure.caption)
    if data:
        caption += f" <a href='{escape(data)}'>Numbers (CSV)</a>."
    parts.append(f"<figcaption>{caption}</figcaption>{notes_html(figure.missing)}</figure>")
    return "".join(parts)


def page(title: str, meta: list[str], sections: list[Section]) -> str:
    """Return the whole HTML document.

    Args:
        title: Page title.
        meta: Lines shown under the title (escaped here).
        sections: Sections in order; each gets a contents link.

    Returns:
        The document.
    """
    nav = "".join(f"<a href='#{escape(s.anchor)}'>{escape(s.title)}</a>" for s in sections)
    lines = "".join(f"<div>{escape(line)}</div>" for line in meta)
    body = "".join(
        f"<section id='{escape(s.anchor)}'><h2>{escape(s.title)}</h2>{s.body}</section>"
        for s in sections
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<div class='meta'>{lines}</div><nav>{nav}</nav>{body}</body></html>\n"
    )
