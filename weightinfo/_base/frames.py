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
