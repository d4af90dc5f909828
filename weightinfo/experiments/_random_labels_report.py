"""Report of the random-labels experiment (:mod:`weightinfo.experiments.random_labels`).

Writes ``random_labels.json``, ``random_labels.png`` and ``random_labels.md`` from the result dict of
:func:`~weightinfo.experiments.random_labels.run` (:func:`write_outputs`); :func:`plot` draws the figure,
:func:`markdown` generates the report text (settings, tables, a reading generated from the numbers,
command and machine). Everything here works from the result dict alone, so a saved
``random_labels.json`` can be re-rendered: ``write_outputs(json.load(...), out_dir)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._base.provenance import made_by_line
from . import QUICK_BANNER
from ._random_labels_defaults import CHOICE_KEYS, CHOICE_NOTE, DEFAULTS
from ._report_files import caption_command

__all__ = ["markdown", "plot", "strictly_increasing", "write_outputs"]


def strictly_increasing(values: Sequence[float]) -> bool:
    """Whether every value is larger than the one before (NaN never is)."""
    return all(b > a for a, b in zip(values, values[1:]))


def write_outputs(result: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """``random_labels.{json,png,md}`` in ``out_dir`` (``_report_files.write_report``)."""
    from ._report_files import write_report

    return write_report(result, out_dir, "random_labels", plot=plot, markdown=markdown)


_METHOD_STYLE = {
    "fisher": ("C0", "o", "Fisher (closed form)"),
    "variational": ("C3", "s", "variational"),
}


def plot(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """IW against the fraction of random labels (both methods, mean term dashed), and per method the
    nats per layer and fraction, split into mean term (hatched) and curvature term."""
    from matplotlib import colormaps

    from ..report.plots import figure, save_figure

    s = result["settings"]
    rows = result["rows"]
    methods = s["methods"]
    fr = [r["fraction"] for r in rows]
    fig = figure(5.0 + 5.0 * len(methods), 4.6)
    axes = fig.subplots(
        1, 1 + len(methods), gridspec_kw={"width_ratios": [1.0] + [1.1] * len(methods)}
    )
    ax = axes[0]
    for m in methods:
        color, marker, label = _METHOD_STYLE[m]
        ax.plot(fr, [r[f"iw_{m}"] for r in rows], marker=marker, color=color, label=f"IW, {label}")
        ax.plot(
            fr,
            [r[f"curvature_term_{m}"] for r in rows],
            marker=marker,
            color=color,
            ls=":",
            alpha=0.8,
            label=f"curvature term, {m}",
        )
    ax.plot(fr, [r["mean_term"] for r in rows], "k--", marker=".", label="mean term ‖w*−w0‖²/2λ²")
    ax.set_xlabel("fraction of random training labels")
    ax.set_ylabel("nats")
    ax.set_xticks(fr)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="best")
    ax.set_title("information in the weights", fontsize=10)

    cmap = colormaps["viridis"]
    colors = [cmap(0.1 + 0.8 * i / max(1, len(fr) - 1)) for i in range(len(fr))]
    layers = [e["layer"] for e in result["per_layer"][0]["layers"]]
    width = 0.8 / len(fr)
    for ax, m in zip(axes[1:], methods):
        for i, (f, entry) in enumerate(zip(fr, result["per_layer"])):
            by = {e["layer"]: e for e in entry["layers"]}
            xs = [j - 0.4 + (i + 0.5) * width for j in range(len(layers))]
            mean = [by[lay]["mean_term"] for lay in layers]
            total = [by[lay].get(f"iw_{m}", math.nan) for lay in layers]
            curv = [t - mt for t, mt in zip(total, mean)]
            ax.bar(xs, mean, width, color=colors[i], alpha=0.45, hatch="///", edgecolor="white")
            ax.bar(xs, curv, width, bottom=mean, color=colors[i], label=f"{100 * f:g}% random")
        ax.set_xticks(range(len(layers)))
        n_params = {e["layer"]: e.get("n_params") for e in result["per_layer"][0]["layers"]}
        ax.set_xticklabels([f"{lay}\n{n_params[lay]:,} weights" for lay in layers], fontsize=8)
        ax.set_ylabel("nats")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7.5, title="hatched: mean term", title_fontsize=7.5)
        ax.set_title(f"per layer, {_METHOD_STYLE[m][2]}", fontsize=10)
    fig.suptitle(
        f"MLP {tuple(s['model']['widths'])} fit to {s['n_train']} {s['dataset']} images with random labels; "
        f"β = {s['information']['beta']:g} per sample, λ = {s['information']['prior_scale']:g}, "
        "prior mean = initial weights (nats; L_D = mean loss)",
        fontsize=9.5,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    caption_command(fig, result)
    return save_figure(fig, path)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _n(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.0f}"


def _steps(values: Sequence[float], fractions: Sequence[float]) -> str:
    parts = []
    for (a, fa), (b, fb) in zip(zip(values, fractions), zip(values[1:], fractions[1:])):
        parts.append(f"{fa:g}→{fb:g}: {100 * (b - a) / a:+.1f}%" if a else f"{fa:g}→{fb:g}: -")
    return ", ".join(parts)


def _layer_curv(result: dict[str, Any], layer: str, method: str) -> list[float]:
    out = []
    for entry in result["per_layer"]:
        e = next(e for e in entry["layers"] if e["layer"] == layer)
        out.append(e[f"iw_{method}"] - e["mean_term"])
    return out


def _layer_value(result: dict[str, Any], layer: str, key: str) -> list[float]:
    return [next(e for e in x["layers"] if e["layer"] == layer)[key] for x in result["per_layer"]]


def _arrow(values: Sequence[float], fmt: Callable[[float], str] = "{:g}".format) -> str:
    return " → ".join(fmt(v) for v in values)


def _rises(values: Sequence[float]) -> str:
    return "rises strictly" if strictly_increasing(values) else "**not monotone**"


def _reading(result: dict[str, Any]) -> list[str]:
    s, rows = result["settings"], result["rows"]
    fr = [r["fraction"] for r in rows]
    methods = s["methods"]
    out = []
    for m in methods:
        iw = [r[f"iw_{m}"] for r in rows]
        curv = [r[f"curvature_term_{m}"] for r in rows]
        ok = strictly_increasing(iw)
        verdict = "rises strictly with the fraction" if ok else "does **not** rise monotonically"
        out.append(
            f"- **{m}**: IW {verdict}: {' → '.join(_n(v) for v in iw)} nats, ×{iw[-1] / iw[0]:.2f} from "
            f"{fr[0]:g} to {fr[-1]:g} ({_steps(iw, fr)}). The curvature term "
            + (
                "also rises strictly"
                if strictly_increasing(curv)
                else "does **not** rise monotonically"
            )
            + f": {' → '.join(_n(v) for v in curv)} nats ({_steps(curv, fr)})."
        )
    mt = [r["mean_term"] for r in rows]
    out.append(
        "- The mean term ‖w*−w0‖²/(2λ²), common to both methods, "
        + ("rises strictly" if strictly_increasing(mt) else "does not rise monotonically")
        + f": {' → '.join(_n(v) for v in mt)} nats ({_steps(mt, fr)}); it is "
        + ", ".join(f"{100 * r['mean_term'] / r[f'iw_{methods[0]}']:.0f}%" for r in rows)
        + f" of the {methods[0]} IW."
    )
    if (
        len(rows) < 2
    ):  # one fraction: nothing rises or falls, and no increase to share out per layer
        return out
    first, last = result["per_layer"][0], result["per_layer"][-1]
    by0 = {e["layer"]: e for e in first["layers"]}
    gains = {
        m: {e["layer"]: e[f"iw_{m}"] - by0[e["layer"]][f"iw_{m}"] for e in last["layers"]}
        for m in methods
    }
    out.append(
        f"- Where the extra information goes, per layer (IW along the fractions {_arrow(fr)}):"
    )
    for e in last["layers"]:
        lay = e["layer"]
        parts = []
        for m in methods:
            series = _layer_value(result, lay, f"iw_{m}")
            curv = _layer_curv(result, lay, m)
            share = 100 * gains[m][lay] / sum(gains[m].values())
            parts.append(
                f"{m} {_arrow(series, _n)} ({_rises(series)}; ×{series[-1] / series[0]:.2f}, "
                f"{share:.0f}% of the total increase, {gains[m][lay] / e['n_params']:.2f} nats per "
                f"weight; curvature term {_arrow(curv, _n)}, {_rises(curv)})"
            )
        mean = _layer_value(result, lay, "mean_term")
        out.append(
            f"  - {lay} ({e['n_params']:,} weights): "
            + "; ".join(parts)
            + f"; mean term {_arrow(mean, _n)} ({_rises(mean)})."
        )
    ln = result["label_nats"]["values"]
    out.append(
        f"- For scale: the random labels drawn have an entropy of n_corrupted·ln {s['n_classes']} = "
        + ", ".join(_n(v) for v in ln)
        + " nats. IW is the length of a Gaussian code for the weights (P fixed before training), not "
        "the Shannon information I(w; D): its increase is a multiple of the labels' entropy, because "
        "memorising moves and sharpens many weights, each of which the code pays for."
    )
    out.append(
        "- Caveats: one seed (initialisation, data order, label draw) and one training recipe (Adam until "
        "the same training loss); IW depends on β and λ (table above) and, through the mean term, on how "
        "far the optimiser moved the weights, which grows with the epochs needed to fit. The mean term is "
        "the same for both methods, so the methods differ only in the curvature term."
    )
    return out


def _sensitivity_lines(result: dict[str, Any]) -> list[str]:
    s, rows = result["settings"], result["rows"]
    methods = s["methods"]
    main = {"beta": s["information"]["beta"], "prior_scale": s["information"]["prior_scale"]}
    cells_by_setting = [(main, rows)] + [
        (o, [r["sensitivity"][i] for r in rows])
        for i, o in enumerate(result["sensitivity_ordering"])
    ]
    head = ["β", "λ", "method"] + [f"IW {100 * r['fraction']:g}%" for r in rows]
    head += ["curv. term " + " → ".join(f"{100 * r['fraction']:g}%" for r in rows)]
    head += ["E_Q[L_D] (max)", "IW rises", "curv. term rises"]
    lines = [
        "### Other β and λ, same networks",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for setting, cells in cells_by_setting:
        for m in methods:
            iw = [c[f"iw_{m}"] for c in cells]
            curv = [c[f"curvature_term_{m}"] for c in cells]
            el = max(c[f"expected_loss_{m}"] for c in cells)
            line = [f"{setting['beta']:g}", f"{setting['prior_scale']:g}", m]
            line += [_n(v) for v in iw] + [" → ".join(_n(v) for v in curv), f"{el:.3f}"]
            line += [
                "yes" if strictly_increasing(iw) else "**no**",
                "yes" if strictly_increasing(curv) else "**no**",
            ]
            lines.append("| " + " | ".join(line) + " |")
    lines += [
        "",
        "The first rows are the main setting. Nats; E_Q[L_D] (max) is the largest expected training loss "
        "under Q* over the fractions (L_D(w*) ≈ the fit target).",
        "",
    ]
    return lines


def _choice_note(settings: dict[str, Any]) -> list[str]:
    """``[CHOICE_NOTE, ""]`` when the run used the default data, model, β and λ, else ``[]``."""
    used = {
        "dataset": settings["dataset"],
        "n_train": settings["n_train"],
        "widths": tuple(settings["model"]["widths"]),
        "beta": settings["information"]["beta"],
        "prior_scale": settings["information"]["prior_scale"],
    }
    is_default = all(
        used[k] == (tuple(DEFAULTS[k]) if k == "widths" else DEFAULTS[k]) for k in CHOICE_KEYS
    )
    return [CHOICE_NOTE, ""] if is_default else []


def _setup_paragraph(s: dict[str, Any]) -> str:
    """What was trained and measured, in one paragraph (data, model, training, β, λ, both methods)."""
    info, trn = s["information"], s["training"]
    v = info["variational"]
    epochs_text = (
        f"{v['max_epochs']} epochs"
        if not v["tol"]
        else f"≤ {v['max_epochs']} epochs, stop when |ΔC_β| < {v['tol']:g}"
    )
    return (
        f"An MLP {tuple(s['model']['widths'])} ({s['model']['n_params']:,} weights) is fit to "
        f"{s['n_train']:,} {s['dataset']} training images (data seed {s['data_seed']}) of which a fraction "
        "f got a uniformly random label (round(f·N) positions; seeded, so the corrupted positions of a "
        "smaller fraction are among those of a larger one; about 1/10 of the random labels equal the "
        "true one). "
        f"Every network starts from the same initial weights w0 (seed {trn['seed']}) and is trained with "
        f"Adam (lr {trn['lr']:g}, batch {trn['batch_size']}, same data order) until the mean training loss "
        f"on its noisy labels is ≤ {trn['fit_loss']:g} nats (at most {trn['max_epochs']} epochs). The "
        "information in its weights, IW = KL(Q*‖P), is then measured on the data it was fit to (the noisy "
        f"labels), with both methods at **β = {info['beta']:g} per sample** (mean loss; β·N = "
        f"{info['beta_sum']:.3g}) and **λ = {info['prior_scale']:g}**, P = N(w0, λ² I) (prior mean = the "
        "initial weights, one λ for all layers: P does not depend on the data), diagonal Q. Fisher: closed "
        "form of the quadratic model with the exact diagonal Fisher; variational: diagonal Q fit by "
        f"minimising C_β with Adam (lr {info['variational']['lr']:g}, {epochs_text}, one noise draw per "
        "minibatch, local reparameterisation, started from the diagonal optimum of a Monte Carlo Fisher). "
        f"E_Q[L_D]: {info['mc_samples']} weight draws on the whole training set. The mean term "
        "‖w*−w0‖²/(2λ²) is the same for both methods; curvature term = IW − mean term."
    )


def _results_table(rows: list[dict], methods: Sequence[str]) -> list[str]:
    """One row per fraction: labels changed, fit, accuracies, IW per method, mean and curvature terms."""
    head = ["random labels", "labels changed", "epochs", "train acc (noisy)", "test acc", "L_D(w*)"]
    head += [f"IW {m}" for m in methods] + ["mean term"]
    head += [f"curv. term {m}" for m in methods] + [f"E_Q[L_D] {m}" for m in methods]
    head += ["time (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            f"{100 * r['fraction']:g}%",
            f"{r['n_changed']:,}",
            str(r["epochs"]) + ("" if r["fit_reached"] else " (not fit)"),
            _pct(r["train_acc"]),
            _pct(r["test_acc"]),
            f"{r['train_loss']:.4f}",
        ]
        cells += [_n(r[f"iw_{m}"]) for m in methods] + [_n(r["mean_term"])]
        cells += [_n(r[f"curvature_term_{m}"]) for m in methods]
        cells += [f"{r[f'expected_loss_{m}']:.4f}" for m in methods]
        cells += [f"{r['time_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", "IW, mean and curvature terms in nats. ", ""]


def _ordering_line(ordering: dict[str, Any], methods: Sequence[str]) -> list[str]:
    verdicts = [
        f"{m}: IW {'rises strictly' if ordering[m]['iw_strictly_increasing'] else 'does NOT rise strictly'}"
        f" with the fraction (curvature term: "
        f"{'rises strictly' if ordering[m]['curvature_term_strictly_increasing'] else 'not monotone'})"
        for m in methods
    ]
    return ["**Ordering.** " + "; ".join(verdicts) + ".", ""]


def _per_layer_table(result: dict[str, Any], methods: Sequence[str]) -> list[str]:
    """Nats per layer and fraction, per method and the mean term."""
    layers = [e["layer"] for e in result["per_layer"][0]["layers"]]
    n_params = {e["layer"]: e.get("n_params", 0) for e in result["per_layer"][0]["layers"]}
    head = ["random labels"] + [
        f"{lay} ({n_params[lay]:,}) {m}" for lay in layers for m in (*methods, "mean")
    ]
    lines = ["## Per layer", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in result["per_layer"]:
        by = {e["layer"]: e for e in entry["layers"]}
        cells = [f"{100 * entry['fraction']:g}%"]
        for lay in layers:
            cells += [_n(by[lay].get(f"iw_{m}")) for m in methods] + [_n(by[lay]["mean_term"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", "Nats per layer (weights and biases); `mean` is the layer's mean term.", ""]


def _reproduce_section(result: dict[str, Any]) -> list[str]:
    """The command, the wall time and the machine (times are indicative on a shared machine)."""
    m = result["machine"]
    # ``load_average`` (machine_info); results written before it was shared call it ``load_average_at_end``.
    load = m.get("load_average", m.get("load_average_at_end"))
    return [
        "## Reproduce",
        "",
        "```",
        (result.get("made_by") or {}).get("command") or result["command"],
        "```",
        "",
        f"Total wall time {result['time_s'] / 60:.1f} min on {m['platform']} ({m['cpu_count']} cores, "
        f"torch {m['torch']} with {m['torch_threads']} threads, OMP_NUM_THREADS={m['omp_num_threads']}), "
        "a machine shared with other jobs"
        + (
            f" (load average {', '.join(f'{v:.1f}' for v in load)} over the last 1, "
            "5, 15 min at the end of the run)"
            if load
            else ""
        )
        + ": times are indicative only. Per-fraction times in the table include training and every "
        "measurement (main and other β, λ; `--sensitivity none` skips the latter). "
        "Numbers: `random_labels.json`.",
        "",
    ]


def markdown(result: dict[str, Any]) -> str:
    """The report: settings, table of results, per-layer table, reading, command and machine."""
    s, rows = result["settings"], result["rows"]
    methods = s["methods"]
    lines = [QUICK_BANNER, ""] if result.get("quick") else []
    lines += [
        "# Information in the weights against the fraction of random labels",
        "",
        *([made_by_line(result["made_by"]), ""] if result.get("made_by") else []),
        "Generated by `weightinfo.experiments.random_labels` (`experiments/random_labels.py`, "
        "`weightinfo reproduce random-labels`); rerunning the command below overwrites it.",
        "",
        _setup_paragraph(s),
        "",
        *_choice_note(s),
        "## Results",
        "",
    ]
    lines += _results_table(rows, methods)
    lines += _ordering_line(result["ordering"], methods)
    lines += ["![IW against the fraction of random labels](random_labels.png)", ""]
    if result.get("sensitivity_ordering"):
        lines += _sensitivity_lines(result)
    lines += _per_layer_table(result, methods)
    lines += ["## Reading", ""] + _reading(result) + [""]
    lines += _reproduce_section(result)
    return "\n".join(lines)
