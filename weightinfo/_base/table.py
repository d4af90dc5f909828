"""Per-layer result tables shared by curvature and information results: rows of plain dicts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowTable:
    """Rows (one dict per module) with a title; ``to_dict()`` for JSON, ``to_dataframe()`` for pandas."""

    rows: list[dict]
    title: str = ""

    def to_dict(self) -> list[dict]:
        return [dict(r) for r in self.rows]

    def to_dataframe(self):
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from e
        return pd.DataFrame(self.rows)

    def _render(self, head: str, lines: list[str]) -> str:
        return "\n".join(([self.title] if self.title else []) + [head, "-" * len(head)] + lines)
