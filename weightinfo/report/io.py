"""JSON output: convert results to JSON-safe values and write them atomically.

:func:`to_jsonable` (defined in :mod:`weightinfo._base.jsonable`, re-exported here) turns the values
results are made of into plain JSON types:

* mappings → objects (keys become strings), lists/tuples → arrays, sets → sorted arrays;
* torch tensors and numpy arrays → (nested) lists, one-element / 0-d ones and numpy scalars →
  numbers; ``os.PathLike`` → string; enums → their value; dates → ISO 8601 strings;
* dataclass instances → objects of their fields; objects with a ``to_dict()`` method → its result;
* **non-finite floats**: strict JSON has no NaN or infinity, so by default ``NaN``, ``inf`` and
  ``-inf`` become ``null``. With ``nonfinite="string"`` they become the strings ``"NaN"``,
  ``"Infinity"`` and ``"-Infinity"`` instead (what ``float()`` parses back).

Anything else (bytes, complex numbers, arbitrary objects) raises ``TypeError`` naming where in the
object it sits.

:func:`write_json_atomic` serialises first (so a value that cannot be stored leaves the destination
untouched), writes a temporary file in the destination folder, flushes it to disk and moves it over
the destination with ``os.replace``: readers see the old file or the complete new one, never a
partial write, and no temporary file is left behind, even on error.

>>> to_jsonable({"trace": float("nan"), "shape": (2, 3)})
{'trace': None, 'shape': [2, 3]}
>>> to_jsonable([float("inf")], nonfinite="string")
['Infinity']
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._base.atomic import atomic_write
from .._base.jsonable import NonFinite, to_jsonable

__all__ = ["read_json", "to_jsonable", "write_json_atomic"]


def write_json_atomic(
    path: str | os.PathLike,
    obj: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    nonfinite: NonFinite = "null",
) -> Path:
    """Write ``to_jsonable(obj)`` to ``path`` as UTF-8 JSON (plus a final newline), atomically.

    Missing parent folders are created. The file is written next to ``path`` under a hidden
    temporary name, synced, given mode ``0o644`` and renamed over ``path`` with ``os.replace``.
    A ``TypeError``/``ValueError`` from the conversion is raised before anything is written.
    Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    text = json.dumps(
        to_jsonable(obj, nonfinite=nonfinite),
        indent=indent,
        sort_keys=sort_keys,
        allow_nan=False,
        ensure_ascii=False,
    )
    data = (text + "\n").encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data))


def read_json(path: str | os.PathLike) -> Any:
    """Parse the JSON file at ``path`` (UTF-8). Non-finite values written as ``null`` stay ``None``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
