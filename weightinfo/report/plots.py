"""Figures of the information in the weights: where it sits (:func:`plot_where`) and the loss-vs-information
curve (:func:`plot_curve`).

Both draw with matplotlib's Agg canvas (no window, no pyplot state), write a PNG atomically (temporary file in
the destination folder, then ``os.replace``) and return its path. Units and conventions are stated on every
figure: information in nats, L_D the **mean** per-sample loss, β **per sample**.

* :func:`plot_where` (an ``InformationResult``): nats per layer (bars, annotated with the share of the total and
  nats per weight); below, for every convolution (up to ``max_maps``) a heat map of nats per (output filter,
  input channel), the per-weight map summed over the kernel; without convolutions, a bar strip of nats per
  output unit (weight row + bias) for every linear layer (up to ``max_maps``).
* :func:`plot_curve` (an ``InformationCurve``): E_{Q*}[L_D] (Monte Carlo, ± standard error, and the quadratic
  model) against IW in nats, each point labelled with its β; and C_β = E_Q[L_D] + β·IW against β.
* :func:`figure` and :func:`save_figure`: the canvas and the atomic PNG write those two use, for other
  figures (the experiments' reports).
"""

from __future__ import annotations

import math
from pathlib import Path

from .._base.atomic import atomic_write

__all__ = ["figure", "plot_curve", "plot_where", "save_figure"]

CONVENTIONS_NOTE = "nats; L_D = mean per-sample loss; β per sample"


def figure(width: float, height: float):
    """A matplotlib ``Figure`` of ``width`` × ``height`` inches on an Agg canvas (no window, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; return ``path``."""
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110))


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.3e}"


def _lambda_text(scale: dict) -> str:
    vals = sorted(set(round(float(v), 6) for v in scale.values()))
    if len(vals) == 1:
        return f"λ = {vals[0]:.3g}"
    return f"λ_l ∈ [{vals[0]:.3g}, {vals[-1]:.3g}]"


# ------------------------------------------------------------------------------------------------
# Where is the information
# ------------------------------------------------------------------------------------------------


def _maps(result, max_maps: int):
    """(kind, layer, matrix or vector, shape note) for the heat maps / bar strips, and how many exist."""
    from ..curvature.result import layer_of

    per = result.per_parameter
    types = result.layer_types
    conv = [k for k, v in per.items() if v.ndim >= 3 and k.endswith("weight")]
    if conv:
        out = []
        for k in conv[:max_maps]:
            v = per[k].detach().double()
            m = v.reshape(v.shape[0], v.shape[1], -1).sum(-1)  # filters × input channels
            kernel = "×".join(str(s) for s in v.shape[2:])
            out.append(("conv", layer_of(k), types.get(layer_of(k), ""), m, kernel))
        return out, len(conv)
    lin = [k for k, v in per.items() if v.ndim == 2 and k.endswith("weight")]
    out = []
    for k in lin[:max_maps]:
        layer = layer_of(k)
        units = result.per_filter(k).detach().double()
        bias = per.get(f"{layer}.bias" if layer else "bias")
        with_bias = bias is not None and bias.numel() == units.numel()
        if with_bias:
            units = units + bias.detach().double().reshape(-1)
        out.append(
            ("linear", layer, types.get(layer, ""), units, "weight row + bias" if with_bias else "")
        )
    return out, len(lin)


def _layer_bars(ax, rows) -> None:
    """Nats per layer as horizontal bars, each labelled with its share, nats per weight and size."""
    labels = [f"{r['layer'] or '<root>'} ({r['type']})" if r["type"] else r["layer"] for r in rows]
    nats = [r["nats"] for r in rows]
    ypos = list(range(len(rows)))
    ax.barh(ypos, nats, color="tab:blue", alpha=0.8)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("information in the weights per layer (nats)")
    top = max(max(nats), 0.0)
    ax.set_xlim(min(0.0, min(nats)) * 1.1, top * 1.7 if top > 0 else 1.0)
    for y, r in zip(ypos, rows):
        share = "" if math.isnan(r["share"]) else f"{100 * r['share']:.1f}%  ·  "
        ax.text(
            max(r["nats"], 0.0),
            y,
            f"  {_fmt(r['nats'])} nats  ·  {share}{r['nats_per_param']:.3g} nats/param  ·  "
            f"{r['n_params']:,} params",
            va="center",
            fontsize=7.5,
        )
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(
        "Where is the information: nats per layer (share of total, nats per weight)", fontsize=10
    )


def _filter_map(fig, a, name: str, arr, note) -> None:
    """A convolution's nats per (output filter, input channel), summed over the kernel, as a heat map."""
    from matplotlib.ticker import MaxNLocator

    im = a.imshow(arr, aspect="auto", interpolation="nearest", cmap="viridis")
    a.set_xlabel("input channel", fontsize=8)
    a.set_ylabel("output filter", fontsize=8)
    for axis, size in ((a.xaxis, arr.shape[1]), (a.yaxis, arr.shape[0])):
        if size <= 16:
            axis.set_ticks(range(size))
        else:
            axis.set_major_locator(MaxNLocator(integer=True))
    a.set_title(f"{name}: nats per filter × input\n(summed over {note} kernel)", fontsize=8.5)
    cb = fig.colorbar(im, ax=a, fraction=0.046, pad=0.03)
    cb.set_label("nats", fontsize=8)
    cb.ax.tick_params(labelsize=7)


def _unit_strip(a, name: str, vals, note) -> None:
    """A linear layer's nats per output unit as a bar strip."""
    a.bar(range(len(vals)), vals, width=1.0, color="tab:orange", linewidth=0)
    a.set_xlim(-0.5, len(vals) - 0.5)
    a.set_xlabel("output unit", fontsize=8)
    a.set_ylabel("nats" + (f" ({note})" if note else ""), fontsize=8)
    a.set_title(f"{name}: nats per output unit", fontsize=8.5)
    a.grid(axis="y", alpha=0.3)


def plot_where(result, path, *, title: str | None = None, max_maps: int = 6) -> Path:
    """Per-layer nats (bars) and per-filter / per-unit maps of ``result`` (an ``InformationResult``), as PNG.

    Returns ``path``. ``max_maps`` caps the number of convolution heat maps (or linear bar strips).
    """
    rows = result.per_layer.rows
    if not rows:
        raise ValueError("the result has no parameters to plot")
    maps, n_maps = _maps(result, max_maps)
    ncols = min(3, max(1, len(maps)))
    nrows_maps = math.ceil(len(maps) / ncols) if maps else 0
    bar_h = max(2.2, 0.34 * len(rows) + 1.0)
    map_h = 3.1
    fig = figure(12.0, bar_h + map_h * nrows_maps + 1.0)
    gs = fig.add_gridspec(
        1 + nrows_maps,
        ncols,
        height_ratios=[bar_h] + [map_h] * nrows_maps,
        hspace=0.55,
        wspace=0.35,
    )

    _layer_bars(fig.add_subplot(gs[0, :]), rows)
    for i, (kind, layer, ltype, data, note) in enumerate(maps):
        a = fig.add_subplot(gs[1 + i // ncols, i % ncols])
        name = f"{layer or '<root>'}" + (f" ({ltype})" if ltype else "")
        if kind == "conv":
            _filter_map(fig, a, name, data.numpy(), note)
        else:
            _unit_strip(a, name, data.numpy(), note)
        a.tick_params(labelsize=7)
    if n_maps > len(maps):
        fig.text(
            0.99, 0.005, f"maps of the first {len(maps)} of {n_maps} layers", ha="right", fontsize=7
        )

    sub = (
        f"IW = {_fmt(result.nats)} nats ({_fmt(result.bits)} bits) at β = {result.beta:.3g} per sample; "
        f"{result.method}/{result.structure}/{result.curvature}; prior N({result.prior_mean}, λ²), "
        f"{_lambda_text(result.prior_scale)}; N = {result.n_samples}"
    )
    fig.suptitle(
        (title or "Information in the weights") + f"  [{CONVENTIONS_NOTE}]\n" + sub, fontsize=10.5
    )
    h = fig.get_figheight()
    fig.subplots_adjust(left=0.16, right=0.97, top=1 - 0.95 / h, bottom=0.55 / h)
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------------
# Loss versus information
# ------------------------------------------------------------------------------------------------


def _spans_decades(values) -> bool:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return bool(v) and min(v) > 0 and max(v) / min(v) > 10


def plot_curve(curve, path, *, title: str | None = None) -> Path:
    """The loss-vs-information curve of ``curve`` (an ``InformationCurve``) and C_β vs β, as PNG.

    Left: E_{Q*}[L_D] (Monte Carlo mean ± standard error; dashed: quadratic model L_D(w*) + ½ tr(HΣ*)) against
    IW in nats (log axis when the values span more than a decade), each point labelled with its β; dotted:
    L_D(w*). Right: C_β = E_Q[L_D] + β·IW and its two terms against β (log axis). Returns ``path``.
    """
    rows = curve.rows
    if not rows:
        raise ValueError("the curve has no points to plot")
    nan = float("nan")
    beta = [r["beta"] for r in rows]
    nats = [r["nats"] for r in rows]
    el = [r["expected_loss"] for r in rows]
    se = [r["expected_loss_stderr"] if r["expected_loss_stderr"] is not None else nan for r in rows]
    se = [0.0 if math.isnan(s) else s for s in se]
    quad = [
        nan if r["expected_loss_quadratic"] is None else r["expected_loss_quadratic"] for r in rows
    ]
    lag = [r["lagrangian"] for r in rows]
    train = rows[0].get("train_loss")
    has_mc = any(math.isfinite(x) for x in el)

    fig = figure(12.5, 5.0)
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)

    if has_mc:
        ax.errorbar(
            nats,
            el,
            yerr=se,
            fmt="o-",
            color="tab:blue",
            capsize=3,
            ms=5,
            label="E_Q[L_D] (Monte Carlo ± se)",
        )
    if any(math.isfinite(q) for q in quad):
        ax.plot(
            nats, quad, "s--", color="tab:gray", ms=3.5, label="quadratic model L_D(w*) + ½tr(HΣ*)"
        )
    if train is not None and math.isfinite(train):
        ax.axhline(train, color="k", ls=":", lw=1, label=f"L_D(w*) = {train:.4g}")
    ys = el if has_mc else quad
    for x, y, b in zip(nats, ys, beta):
        if math.isfinite(x) and math.isfinite(y):
            ax.annotate(
                f"β={b:.2g}", (x, y), textcoords="offset points", xytext=(5, 6), fontsize=7.5
            )
    if _spans_decades(nats):
        ax.set_xscale("log")
    _finish_panel(
        ax,
        "information in the weights IW = KL(Q*‖P)  (nats)",
        "expected loss E_{w~Q*}[L_D(w)]  (nats per sample)",
        "Loss vs information (each point: one β)",
        legend="upper right",
    )

    bx.plot(beta, lag, "o-", color="tab:green", label="C_β = E_Q[L_D] + β·IW")
    loss_term = el if has_mc else quad
    bx.plot(beta, loss_term, "^--", color="tab:blue", ms=4, label="E_Q[L_D]")
    bx.plot(beta, [b * n for b, n in zip(beta, nats)], "v--", color="tab:red", ms=4, label="β·IW")
    bx.set_xscale("log")
    if all(v > 0 for v in lag + [b * n for b, n in zip(beta, nats)] if math.isfinite(v)) and (
        _spans_decades(lag + [b * n for b, n in zip(beta, nats)])
    ):
        bx.set_yscale("log")
    _finish_panel(
        bx,
        "β (per sample; β_sum = N·β)",
        "nats per sample",
        "Information Lagrangian C_β at the optimum Q*_β",
        legend="upper left",
    )

    s = curve.settings
    n = s.get("n_samples")
    sub = (
        f"{s.get('method', '')}/{s.get('structure', '')}/{s.get('curvature', '')}, "
        f"prior N({s.get('prior_mean', '')}, λ²), λ = {s.get('prior_scale', '')}"
        + (f", N = {n}" if n else "")
        + (f", {s.get('mc_samples')} weight draws per β" if has_mc else "")
    )
    fig.suptitle(
        (title or "Loss–information trade-off") + f"  [{CONVENTIONS_NOTE}]\n" + sub, fontsize=10.5
    )
    fig.subplots_adjust(left=0.07, right=0.98, top=0.84, bottom=0.11, wspace=0.25)
    return save_figure(fig, path)


def _finish_panel(ax, xlabel: str, ylabel: str, title: str, *, legend: str) -> None:
    """Labels, title, grid and legend of one panel of the curve figure, in one style."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7.5, loc=legend)
