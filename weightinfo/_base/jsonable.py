"""JSON-safe copies of values: the one conversion behind checkpoint metadata, results and reports.

:func:`to_jsonable` turns the values results and metadata are made of into plain JSON types:

* mappings → objects (keys become strings), lists/tuples → arrays, sets → sorted arrays;
* torch tensors and numpy arrays → (nested) lists, 0-d ones and numpy scalars → numbers;
  ``os.PathLike`` → string; enums → their value; dates → ISO 8601 strings;
* dataclass instances → objects of their fields; objects with a ``to_dict()`` method → its result;
* **non-finite floats**: strict JSON has no NaN or infinity, so by default ``NaN``, ``inf`` and
  ``-inf`` become ``null``. With ``nonfinite="string"`` they become the strings ``"NaN"``,
  ``"Infinity"`` and ``"-Infinity"`` instead (what ``float()`` parses back).

Anything else (bytes, complex numbers, arbitrary objects) raises ``TypeError`` naming where in the
object it sits, unless ``default`` is given: then ``default(value)`` is converted instead (e.g.
``default=str`` for descriptive metadata that must never fail).

>>> to_jsonable({"trace": float("nan"), "shape": (2, 3)})
{'trace': None, 'shape': [2, 3]}
>>> to_jsonable([float("inf")], nonfinite="string")
['Infinity']
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

__all__ = ["NonFinite", "to_jsonable"]

NonFinite = Literal["null", "string"]
_NONFINITE_STRINGS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def to_jsonable(
    value: Any,
    where: str = "value",
    *,
    nonfinite: NonFinite = "null",
    default: Callable[[Any], Any] | None = None,
) -> Any:
    """A copy of ``value`` made only of JSON types (see the module docstring for the rules).

    ``where`` names the root in errors; ``nonfinite`` is ``"null"`` (default) or ``"string"``;
    ``default`` converts values of unknown types (default: ``TypeError``).
    """
    if nonfinite not in ("null", "string"):
        raise ValueError(f"nonfinite must be 'null' or 'string', got {nonfinite!r}")
    return _Converter(nonfinite, default)(value, where)


class _Converter:
    def __init__(self, nonfinite: NonFinite, default: Callable[[Any], Any] | None):
        self.nonfinite, self.default = nonfinite, default

    def _float(self, value: float) -> float | str | None:
        value = float(value)
        if math.isfinite(value):
            return value
        return _NONFINITE_STRINGS[repr(value)] if self.nonfinite == "string" else None

    def __call__(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, enum.Enum):
            return self(value.value, where)
        if isinstance(value, str):  # plain str, also for subclasses such as torch's TorchVersion
            return str(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return self._float(value)
        if isinstance(value, Mapping):
            return {str(k): self(v, f"{where}[{k!r}]") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, (set, frozenset)):
            items = [self(v, f"{where}[...]") for v in value]
            try:
                return sorted(items)
            except TypeError:
                return sorted(items, key=repr)
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
            return value.isoformat()
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, where)
        if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
            return self(value.detach().cpu().tolist(), where)
        if hasattr(value, "tolist"):  # numpy array or scalar
            return self(value.tolist(), where)
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict):
            return self(to_dict(), where)
        if self.default is not None:
            return _Converter(self.nonfinite, None)(self.default(value), where)
        raise TypeError(f"{where} of type {type(value).__name__} cannot be stored as JSON")
