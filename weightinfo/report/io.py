"""JSON output: convert results to JSON-safe values and write them atomically.

:func:`to_jsonable` turns the values results are made of into plain JSON types:

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

import dataclasses
import datetime as _dt
import enum
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from .._base.atomic import atomic_write

__all__ = ["read_json", "to_jsonable", "write_json_atomic"]

NonFinite = Literal["null", "string"]
_NONFINITE_STRINGS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _float(value: float, nonfinite: NonFinite) -> float | str | None:
    value = float(value)
    if math.isfinite(value):
        return value
    if nonfinite == "string":
        return _NONFINITE_STRINGS[repr(value)]
    return None


def to_jsonable(value: Any, *, nonfinite: NonFinite = "null", where: str = "value") -> Any:
    """A copy of ``value`` made only of JSON types (see the module docstring for the rules).

    ``nonfinite`` is ``"null"`` (default) or ``"string"``; ``where`` names the root in errors.
    """
    if nonfinite not in ("null", "string"):
        raise ValueError(f"nonfinite must be 'null' or 'string', got {nonfinite!r}")
    return _convert(value, nonfinite, where)


def _convert(value: Any, nonfinite: NonFinite, where: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return _convert(value.value, nonfinite, where)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(value, nonfinite)
    if isinstance(value, Mapping):
        return {str(k): _convert(v, nonfinite, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_convert(v, nonfinite, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_convert(v, nonfinite, f"{where}[...]") for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _convert(fields, nonfinite, where)
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
        return _convert(value.detach().cpu().tolist(), nonfinite, where)
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # numpy array or scalar
        return _convert(value.tolist(), nonfinite, where)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return _convert(to_dict(), nonfinite, where)
    raise TypeError(f"{where} of type {type(value).__name__} cannot be written as JSON")


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
