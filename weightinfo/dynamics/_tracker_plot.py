"""Plot of :class:`weightinfo.Tracker` records: one panel per scalar quantity against epoch/step/call."""

from __future__ import annotations

import os
from pathlib import Path

UNITS = {
    "trace": "tr F [nats / weight²]",
    "logdet": "ln|F + δI| [nats]",
    "information": "IW [nats]",
    "loss": "loss [nats / sample]",
    "accuracy": "accuracy [fraction]",
    "temperature": "η / B [lr / sample]",
    "gradient_noise": "B_simple [samples]",
}
PANELS = tuple(UNITS)


def _nan(v):
    return float("nan") if v is None else v


def plot_records(
    records: list[dict],
    path: str | os.PathLike,
    *,
    kind: str,
    damping: float,
    command: str | None = None,
) -> Path:
    """Draw every recorded scalar quantity (± its stderr where recorded) and the per-layer tr F into a PNG.

    The x axis is the epoch when every record has one, else the optimizer step, else the call number. The
    suptitle names the probe size and Fisher kind and, with ``command``, the command that made the records.
    """
    if not records:
        raise ValueError("no records to plot: call step() or train with the tracker first")
    from ..report.plots import figure, save_figure

    xkey = next(
        (k for k in ("epoch", "step") if all(r.get(k) is not None for r in records)), "call"
    )
    xlabel = {"epoch": "epoch", "step": "step [optimizer steps]", "call": "tracker call"}[xkey]
    xs = [r[xkey] for r in records]
    panels = [k for k in PANELS if any(r.get(k) is not None for r in records)]
    has_layers = any(r.get("layer_trace") for r in records)
    n_panels = max(1, len(panels) + int(has_layers))
    cols = min(3, n_panels)
    rows = -(-n_panels // cols)
    fig = figure(4.2 * cols, 3.2 * rows + (0.4 if command else 0.0))
    from matplotlib.ticker import MaxNLocator

    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n_panels)]
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs, steps, calls
    for ax, key in zip(axes, panels):
        ys = [_nan(r.get(key)) for r in records]
        err = [r.get(f"{key}_stderr") for r in records]
        if any(e for e in err):
            ax.errorbar(
                xs, ys, yerr=[e or 0.0 for e in err], marker="o", ms=3, capsize=2, label="probe"
            )
        else:
            ax.plot(xs, ys, marker="o", ms=3, label="probe")
        if key in ("loss", "accuracy") and any(r.get(f"test_{key}") is not None for r in records):
            ax.plot(
                xs, [_nan(r.get(f"test_{key}")) for r in records], marker="s", ms=3, label="test"
            )
            ax.legend(fontsize=7)
        ax.set_ylabel(UNITS[key] + (f", δ = {damping:g}" if key == "logdet" else ""))
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    if has_layers:
        ax = axes[len(panels)]
        names = list(dict.fromkeys(k for r in records for k in (r.get("layer_trace") or {})))
        for name in names:
            ys = [_nan((r.get("layer_trace") or {}).get(name)) for r in records]
            ax.plot(xs, ys, marker="o", ms=3, label=name)
        ax.set_ylabel("per-layer tr F [nats / weight²]")
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    title = f"Tracker on {records[-1].get('n_probe')} probe samples (Fisher kind={kind})"
    if command:
        title += "\ncommand: " + command.replace("$", r"\$")  # no mathtext
    fig.suptitle(title, fontsize=9 if command else None)
    fig.tight_layout()
    return save_figure(fig, path)
