"""pandas, imported only when a ``to_dataframe()`` is called, with one error message when it is missing."""

from __future__ import annotations


def pandas():
    """The ``pandas`` module, or an ``ImportError`` that says how to install it."""
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_dataframe() needs pandas: pip install pandas") from e
    return pd


def dataframe(rows: list[dict], columns: list[str] | None = None):
    """``pandas.DataFrame(rows, columns=columns)``."""
    return pandas().DataFrame(rows, columns=columns)


def scalar_row(d: dict) -> dict:
    """The entries of ``d`` that are one number, string, bool or None (nested lists and dicts left out)."""
    return {k: v for k, v in d.items() if v is None or isinstance(v, (bool, int, float, str))}


def one_row(d: dict):
    """A one-row DataFrame of :func:`scalar_row` of ``d`` (a result's ``to_dict()``: same names, same units)."""
    return dataframe([scalar_row(d)])
