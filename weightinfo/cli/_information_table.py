"""The per-layer "where is the information" table and the IW summary lines that ``measure`` and ``demo`` print."""

from __future__ import annotations

import math

from ._common import STATE, stdout_console

__all__ = ["print_information_table", "summary_lines"]


def _table_cells(rows: list[dict], total: float) -> list[list[str]]:
    out = []
    for r in rows:
        share = "-" if math.isnan(r["share"]) else f"{100 * r['share']:.1f}"
        out.append(
            [
                r["layer"] or "<root>",
                r["type"],
                f"{r['n_params']:,}",
                f"{r['nats']:,.1f}",
                share,
                f"{r['nats_per_param']:.4g}",
            ]
        )
    n = sum(r["n_params"] for r in rows)
    out.append(["total", "", f"{n:,}", f"{total:,.1f}", "100.0", f"{total / n:.4g}"])
    return out


HEADS = ("layer", "type", "#params", "nats", "share %", "nats/param")


def print_information_table(result) -> None:
    """The per-layer "where is the information" table on stdout (rich, or plain with ``--plain``)."""
    rows = result.per_layer.rows
    cells = _table_cells(rows, result.nats)
    title = f"where is the information (β = {result.beta:g} per sample, N = {result.n_samples})"
    if STATE.plain:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADS)]

        def fmt(cs):
            return "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cs, widths))
            ).rstrip()

        lines = [title, fmt(HEADS)] + [fmt(c) for c in cells[:-1]]
        lines += ["-" * len(fmt(HEADS)), fmt(cells[-1])]
        print("\n".join(lines))
        return
    from rich.table import Table

    table = Table(title=title, show_footer=True, title_justify="left")
    for i, h in enumerate(HEADS):
        table.add_column(h, justify="left" if i < 2 else "right", footer=cells[-1][i], no_wrap=True)
    for c in cells[:-1]:
        table.add_row(*c)
    stdout_console().print(table)


def summary_lines(result) -> list[str]:
    """IW, E_Q[L_D], L_D(w*), C_β, β and λ in a few lines."""
    e = result.extra
    mean_term = e.get("mean_term")
    split = ""
    if mean_term is not None:
        split = (
            f" = mean term ‖w*−w0‖²/2λ² {mean_term:,.1f} + curvature term "
            f"{result.nats - mean_term:,.1f}"
        )
    se = result.expected_loss_stderr
    if result.mc_samples == 0 and math.isnan(result.expected_loss):
        el = "not estimated (--mc-samples 0)"
    else:
        el = f"{result.expected_loss:.5g}" + ("" if math.isnan(se) else f" ± {se:.2g}")
    quad = result.expected_loss_quadratic
    quad_text = "" if quad is None else f" (quadratic model {quad:.5g})"
    lam = ", ".join(f"{k or '<root>'} {v:.3g}" for k, v in result.prior_scale.items())
    n = result.n_samples
    return [
        f"IW = {result.nats:,.1f} nats = {result.bits:,.1f} bits{split}",
        f"E_Q[L_D] = {el}{quad_text}; L_D(w*) = {result.train_loss:.5g}; "
        f"C_β = E_Q[L_D] + β·IW = {result.lagrangian:.5g} (nats per sample)",
        f"β = {result.beta:g} per sample (β·N = {result.beta * n:.4g} for the summed loss, N = {n}); "
        f"λ per layer: {lam}; prior mean {result.prior_mean}; {result.method}/{result.structure}/"
        f"{result.curvature}, {result.convention} convention",
    ]
