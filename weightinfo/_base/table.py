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
        """The rows as a pandas DataFrame (one row per module, the keys of the rows as columns)."""
        from .frames import dataframe

        return dataframe(self.rows)

    def _render(self, head: str, lines: list[str]) -> str:
        return "\n".join(([self.title] if self.title else []) + [head, "-" * len(head)] + lines)

    def _render_layers(
        self, value: str, per_param: str, headers: tuple[str, str], type_width: int
    ) -> str:
        """The per-layer layout: layer, type, params, the ``value`` column, its share in %, and the
        ``per_param`` column, under the two ``headers``."""
        w = type_width
        head = f"{'layer':<28} {'type':<{w}} {'params':>9} {headers[0]:>12} {'share':>7} {headers[1]:>11}"
        return self._render(
            head,
            [
                f"{r['layer'] or '<root>':<28.28} {r['type']:<{w}.{w}} {r['n_params']:>9d} "
                f"{r[value]:>12.5g} {100 * r['share']:>6.2f}% {r[per_param]:>11.4g}"
                for r in self.rows
            ],
        )
