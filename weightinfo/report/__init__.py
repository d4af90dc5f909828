"""Small output helpers for the command line and scripts.

* :mod:`~weightinfo.report.tables`: render a per-layer table (a
  :class:`~weightinfo.curvature.result.LayerTable` or a list of row dicts) as a ``rich`` table,
  with a plain-text fallback;
* :mod:`~weightinfo.report.io`: :func:`write_json_atomic` (JSON-safe conversion of tensors,
  numpy values and NaN, written through a temporary file and ``os.replace``) and
  :func:`read_json`;
* :mod:`~weightinfo.report.html` (import it by name; ``weightinfo report``): one self-contained HTML
  page of what run folders measured, side by side for several.
"""

from .io import read_json, to_jsonable, write_json_atomic
from .tables import format_layer_rows, layer_table, print_layer_table

__all__ = [
    "format_layer_rows",
    "layer_table",
    "print_layer_table",
    "read_json",
    "to_jsonable",
    "write_json_atomic",
]
