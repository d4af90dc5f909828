"""Per-layer tables: a ``rich`` table for terminals and a plain-text fallback.

Input is a :class:`~weightinfo.curvature.result.LayerTable` (``Curvature.per_layer()``) or any
list of row dicts with the keys ``layer, type, n_params, trace, share, mean`` (``share`` a
fraction of the total in [0, 1]; missing keys are shown empty). Columns: layer, type, #params,
trace, share %, mean (trace per parameter), optionally followed by a *total* row whose trace is
the sum of the rows.

>>> print(format_layer_rows([{"layer": "fc", "type": "Linear", "n_params": 10,
...                           "trace": 2.0, "share": 1.0, "mean": 0.2}], show_total=False))
layer  type    #params  trace  share %       mean
fc     Linear       10      2    100.0  2.000e-01
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["COLUMNS", "format_layer_rows", "layer_rows", "layer_table", "print_layer_table"]

#: (row key, column header, right-aligned) in display order.
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("layer", "layer", False),
    ("type", "type", False),
    ("n_params", "#params", True),
    ("trace", "trace", True),
    ("share", "share %", True),
    ("mean", "mean", True),
)


def layer_rows(table: Any) -> list[dict]:
    """The row dicts of a ``LayerTable`` (its ``.rows``) or of an iterable of mappings."""
    rows = getattr(table, "rows", table)
    if isinstance(rows, Mapping) or not isinstance(rows, Iterable):
        raise TypeError(f"expected a LayerTable or a list of row dicts, got {type(table).__name__}")
    out = [dict(r) for r in rows]
    return out


def _total(rows: list[dict]) -> dict:
    n = sum(int(r.get("n_params") or 0) for r in rows)
    trace = math.fsum(float(r.get("trace") or 0.0) for r in rows)
    return {
        "layer": "total",
        "type": "",
        "n_params": n,
        "trace": trace,
        "share": 1.0 if trace > 0 else float("nan"),
        "mean": trace / n if n else float("nan"),
    }


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_cell(key: str, value: Any) -> str:
    """One cell as text: ``#params`` with thousands separators, trace ``.4g``, share in percent
    with one decimal, mean ``.3e``; ``None``/NaN as ``-``; an empty layer name as ``<root>``."""
    if key == "layer":
        return str(value) if value else "<root>"
    if _is_missing(value):
        return "-"
    if key == "n_params":
        return f"{int(value):,}"
    if key == "trace":
        return f"{float(value):.4g}"
    if key == "share":
        return f"{100 * float(value):.1f}"
    if key == "mean":
        return f"{float(value):.3e}"
    return str(value)


def _cells(rows: list[dict], show_total: bool) -> list[list[str]]:
    body = [[format_cell(k, r.get(k, "")) for k, _, _ in COLUMNS] for r in rows]
    if show_total and rows:
        body.append([format_cell(k, v) for k, v in _total(rows).items()])
    return body


def format_layer_rows(table: Any, *, title: str | None = None, show_total: bool = True) -> str:
    """The table as aligned plain text (no colours or box drawing), one line per row."""
    rows = layer_rows(table)
    if title is None:
        title = getattr(table, "title", "") or None
    body = _cells(rows, show_total)
    heads = [h for _, h, _ in COLUMNS]
    widths = [max([len(h)] + [len(line[i]) for line in body]) for i, h in enumerate(heads)]

    def fmt(cells: list[str]) -> str:
        parts = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, (_, _, right) in zip(cells, widths, COLUMNS)
        ]
        return "  ".join(parts).rstrip()

    lines = [title] if title else []
    lines.append(fmt(heads))
    if show_total and rows:
        lines += [fmt(c) for c in body[:-1]]
        lines.append("-" * len(fmt(heads)))
        lines.append(fmt(body[-1]))
    else:
        lines += [fmt(c) for c in body]
    return "\n".join(lines)


def layer_table(table: Any, *, title: str | None = None, show_total: bool = True):
    """A ``rich.table.Table`` of the rows (the total, if shown, as the table's footer)."""
    from rich.table import Table

    rows = layer_rows(table)
    if title is None:
        title = getattr(table, "title", "") or None
    body = _cells(rows, show_total)
    footer = body.pop() if show_total and rows else None
    out = Table(title=title, show_footer=footer is not None, title_justify="left")
    for i, (_, head, right) in enumerate(COLUMNS):
        out.add_column(
            head,
            justify="right" if right else "left",
            footer=footer[i] if footer is not None else "",
            no_wrap=True,
        )
    for cells in body:
        out.add_row(*cells)
    return out


def print_layer_table(
    table: Any,
    *,
    console: Any = None,
    plain: bool = False,
    title: str | None = None,
    show_total: bool = True,
) -> None:
    """Print the table with ``rich`` (to ``console``, default a new stdout console), or as plain
    text when ``plain`` is true."""
    from rich.console import Console

    if plain:
        file = getattr(console, "file", None) or sys.stdout
        print(format_layer_rows(table, title=title, show_total=show_total), file=file)
        return
    console = console if console is not None else Console()
    console.print(layer_table(table, title=title, show_total=show_total))
