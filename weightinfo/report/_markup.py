"""HTML pieces of :mod:`weightinfo.report.html`: escaping, numbers, tables, notices, embedded images, the style.

Every string that comes from a file passes through :func:`esc` (``html.escape`` with quotes) before it reaches
the page; numbers through :func:`fmt` (4 significant digits, counts exact, a unit after a space). Images are
embedded as ``data:image/png;base64`` after checking the PNG signature, so the page needs no other file.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: The page's whole style sheet (inline: the report loads nothing).
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 1500px; padding: 0 1em; color: #1a1a1a; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #3465a4; margin-top: 1.8em; }
h3 { margin: 0.6em 0 0.3em; font-size: 1.05em; } h4 { margin: 0.8em 0 0.2em; font-size: 0.95em; }
.runs { display: flex; gap: 1.5em; align-items: flex-start; }
.run { flex: 1 1 0; min-width: 0; overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.3em 0 0.8em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #eef2f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: bold; border-top: 2px solid #888; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85em; }
pre { background: #f6f8fa; padding: 0.5em; white-space: pre-wrap; word-break: break-all; }
.missing { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.3em 0.6em; margin: 0.4em 0;
           font-size: 0.9em; }
.note { color: #555; font-size: 0.85em; }
"""


def esc(value: Any) -> str:
    """``value`` as text, HTML-escaped (quotes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, unit: str = "") -> str:
    """A number as shown in the report: floats to 4 significant digits (``1098``, ``0.02775``, ``1e-6``),
    integers exact with thousands separators, booleans yes/no, ``None`` as ``–``; ``unit`` after a space.
    Not escaped.

    >>> fmt(1098.2478, "nats"), fmt(0.0277458), fmt(1e-06), fmt(4285), fmt(None, "nats")
    ('1098 nats', '0.02775', '1e-6', '4,285', '–')
    """
    if value is None:
        return "–"
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        if math.isnan(value):
            text = "NaN"
        elif math.isinf(value):
            text = "∞" if value > 0 else "−∞"
        else:
            text = f"{value:.4g}"
            if "e" in text:
                mantissa, exponent = text.split("e")
                text = f"{mantissa}e{int(exponent)}"
    else:
        return str(value)
    return f"{text} {unit}" if unit else text


def fmt_pm(value: Any, stderr: Any, unit: str = "") -> str:
    """``value ± stderr unit`` (``value unit`` without a standard error)."""
    if stderr is None or value is None:
        return fmt(value, unit)
    return f"{fmt(value)} ± {fmt(stderr)}" + (f" {unit}" if unit else "")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cell(value: Any, unit: str = "") -> str:
    """One ``<td>``: numbers right-aligned and formatted with :func:`fmt`, anything else escaped text."""
    if is_number(value) or value is None:
        return f'<td class="num">{esc(fmt(value, unit))}</td>'
    if isinstance(value, (list, tuple)):
        value = ", ".join(fmt(v) if is_number(v) else str(v) for v in value)
    elif isinstance(value, dict):
        value = ", ".join(f"{k}: {fmt(v) if is_number(v) else v}" for k, v in value.items())
    return f"<td>{esc(value)}</td>"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    units: Sequence[str] | None = None,
    total: Sequence[Any] | None = None,
    cls: str = "",
) -> str:
    """A ``<table>`` with escaped ``headers``; ``rows`` of raw values (:func:`cell`; a value already wrapped as
    ``("html", text)`` goes in unescaped), ``units`` per column, an optional bold ``total`` row."""
    units = list(units or [""] * len(headers))

    def tr(values, klass=""):
        cells = []
        for v, u in zip(values, units):
            if isinstance(v, tuple) and len(v) == 2 and v[0] == "html":
                cells.append(f'<td class="num">{v[1]}</td>')
            else:
                cells.append(cell(v, u))
        return f"<tr{f' class={klass!r}' if klass else ''}>{''.join(cells)}</tr>"

    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = [tr(r) for r in rows]
    if total is not None:
        body.append(tr(total, "total"))
    klass = f' class="{esc(cls)}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def kv_table(pairs: Iterable[tuple[str, Any, str]]) -> str:
    """A two-column table of (label, value, unit) triples; pairs whose value is absent are left out."""
    rows = [
        f"<tr><th>{esc(label)}</th>{cell(value, unit)}</tr>"
        for label, value, unit in pairs
        if value is not None
    ]
    return f"<table><tbody>{''.join(rows)}</tbody></table>"


def missing(text: str) -> str:
    """A visible notice (never a silent omission)."""
    return f'<p class="missing">{text}</p>'


def code(text: str) -> str:
    return f"<code>{esc(text)}</code>"


def png_tag(data: bytes, alt: str) -> str:
    """``<img>`` with ``data`` embedded as base64; ``ValueError`` unless ``data`` is a PNG."""
    if not data.startswith(PNG_MAGIC):
        raise ValueError("not a PNG file")
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{b64}">'
