"""JSON-ready copies of values: tuples → lists, numpy/torch scalars → numbers, NaN/Inf → ``None``, paths → strings."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["to_jsonable"]


def to_jsonable(value: Any, where: str = "value") -> Any:
    """A JSON-ready copy of ``value``: tuples → lists, numpy/torch scalars → numbers, NaN/Inf →
    ``None``, paths → strings. Anything else unknown raises ``TypeError`` naming ``where``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):  # plain str, not a subclass such as torch's TorchVersion
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, torch.Tensor):
        return to_jsonable(value.item() if value.numel() == 1 else value.tolist(), where)
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar / 0-d array
        return to_jsonable(value.item(), where)
    if hasattr(value, "tolist"):
        return to_jsonable(value.tolist(), where)
    raise TypeError(f"{where} of type {type(value).__name__} cannot be stored as JSON metadata")
