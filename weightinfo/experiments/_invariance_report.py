"""The analysis, figure and markdown of the invariance experiment (:mod:`.invariance`)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._base.provenance import made_by_line
from . import QUICK_BANNER
from ._invariance_measures import _rho, spearman_ci
from ._report_files import caption_command

__all__ = ["analyse", "markdown", "plot", "reading", "write_outputs"]

CLASS = "class-direction"


def write_outputs(result: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """``invariance.{json,png,md}`` in ``out_dir`` (``_report_files.write_report``)."""
    from ._report_files import write_report

    return write_report(result, out_dir, "invariance", plot=plot, markdown=markdown)


def _mean(v) -> float | None:
    v = [x for x in v if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else None


def analyse(rows: list[dict], s: dict, seed: int) -> dict[str, Any]:
    """Correlations across networks, depth trend, augmentation effect, normalised variance vs Fisher."""
    layers, eff_layers = list(s["fisher_layers"]), list(s["eff_layers"])
    nuis = list(s["nuisances"])
    iw = [r["iw"] for r in rows]
    kw = {"n_boot": s["n_boot"], "seed": seed}
    corr: dict[str, Any] = {"fisher": {}, "i_eff": {}}
    for n in [*nuis, CLASS]:
        corr["fisher"][n] = {
            layer: spearman_ci(iw, [r["fisher"][n][layer] for r in rows], **kw) for layer in layers
        }
        corr["fisher"][n]["sum"] = spearman_ci(
            iw, [sum(r["fisher"][n].values()) for r in rows], **kw
        )
    for layer in eff_layers:
        corr["i_eff"][layer] = spearman_ci(iw, [r["i_eff"][layer] for r in rows], **kw)
    # depth: ratio nuisance / class-direction Fisher per layer; trend = Spearman(ratio, depth index)
    depth: dict[str, Any] = {}
    for n in nuis:
        ratios = [[r["fisher"][n][ly] / r["fisher"][CLASS][ly] for ly in layers] for r in rows]
        trends = [_rho(range(len(layers)), q) for q in ratios]
        depth[n] = {
            "ratio_per_network": ratios,
            "median_ratio_per_layer": [
                float(np.median([q[i] for q in ratios])) for i in range(len(layers))
            ],
            "trend_rho_per_network": trends,
            "mean_trend_rho": _mean(trends),
            "n_decreasing": sum(1 for t in trends if t is not None and t < 0),
            "n_first_above_last": sum(1 for q in ratios if q[-1] < q[0]),
        }
    # augmentation: pairs differing only in augment
    pairs = []
    key = {(r["fraction"], r["weight_noise"], r["augment"]): r for r in rows}
    for (f, sg, a), r in key.items():
        if a or (f, sg, True) not in key:
            continue
        ra = key[(f, sg, True)]
        entry = {"fraction": f, "weight_noise": sg, "ratio_aug_over_plain": {}, "normalised": {}}
        for ly in layers:
            fx, fa = r["fisher"]["translate-x"][ly], ra["fisher"]["translate-x"][ly]
            entry["ratio_aug_over_plain"][ly] = fa / fx
            entry["normalised"][ly] = (fa / ra["fisher"][CLASS][ly]) / (fx / r["fisher"][CLASS][ly])
        entry["iw_plain"], entry["iw_aug"] = r["iw"], ra["iw"]
        pairs.append(entry)
    aug = {
        "pairs": pairs,
        "n_pairs": len(pairs),
        "n_lowered": {ly: sum(p["ratio_aug_over_plain"][ly] < 1 for p in pairs) for ly in layers},
        "n_lowered_normalised": {ly: sum(p["normalised"][ly] < 1 for p in pairs) for ly in layers},
        "geomean_ratio": {
            ly: float(np.exp(np.mean([math.log(p["ratio_aug_over_plain"][ly]) for p in pairs])))
            if pairs else None
            for ly in layers
        },
    }  # fmt: skip
    # normalised variance vs Fisher profile (across layers), per network and nuisance
    nv: dict[str, Any] = {}
    for n in s["nv_grid"]:
        raw = [_rho([r["normalised_variance"][n][ly] for ly in layers],
                    [r["fisher"][n][ly] for ly in layers]) for r in rows]  # fmt: skip
        rat = [_rho([r["normalised_variance"][n][ly] for ly in layers],
                    [r["fisher"][n][ly] / r["fisher"][CLASS][ly] for ly in layers]) for r in rows]  # fmt: skip
        across = {
            ly: _rho([r["normalised_variance"][n][ly] for r in rows], [r["fisher"][n][ly] for r in rows])
            for ly in layers
        }  # fmt: skip
        nv[n] = {
            "rho_vs_fisher_per_network": raw,
            "mean_rho_vs_fisher": _mean(raw),
            "rho_vs_ratio_per_network": rat,
            "mean_rho_vs_ratio": _mean(rat),
            "rho_across_networks_per_layer": across,
            "rho_iw_vs_nv_per_layer": {
                ly: spearman_ci(iw, [r["normalised_variance"][n][ly] for r in rows], **kw)
                for ly in layers
            },
        }
    return {
        "headline_layer": s["headline_layer"],
        "spearman_iw": corr,
        "depth": depth,
        "augmentation": aug,
        "normalised_variance_vs_fisher": nv,
    }


def plot(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """(a) IW vs nuisance Fisher at the headline layer; (b) IW vs I_eff; (c) ratio nuisance / class Fisher
    by depth (median over networks); (d) normalised variance by depth (mean over networks)."""
    from ..report.plots import figure, save_figure

    s, rows, an = result["settings"], result["networks"], result["analysis"]
    layers, hl = s["fisher_layers"], s["headline_layer"]
    fig = figure(13.0, 9.0)
    ax = fig.subplots(2, 2)
    iw = [r["iw"] for r in rows]
    for i, n in enumerate([*s["nuisances"], CLASS]):
        ax[0, 0].scatter(iw, [r["fisher"][n][hl] for r in rows], label=n, color=f"C{i}")
    ax[0, 0].set(xlabel="IW (nats)", ylabel=f"activation Fisher at {hl} [nats / θ²]", yscale="log",
                 title=f"(a) IW vs Fisher per nuisance ({hl})")  # fmt: skip
    ax[0, 0].legend(fontsize=8)
    for j, ly in enumerate(s["eff_layers"]):
        ax[0, 1].scatter(iw, [r["i_eff"][ly] for r in rows], label=ly, color=f"C{j}")
    ax[0, 1].set(xlabel="IW (nats)", ylabel="I_eff (nats)", title="(b) IW vs I_eff per layer")
    ax[0, 1].legend(fontsize=8)
    x = range(len(layers))
    for i, n in enumerate(s["nuisances"]):
        for q in an["depth"][n]["ratio_per_network"]:
            ax[1, 0].plot(x, q, color=f"C{i}", alpha=0.2, lw=0.8)
        ax[1, 0].plot(x, an["depth"][n]["median_ratio_per_layer"], "o-", color=f"C{i}", label=n)
    ax[1, 0].set(yscale="log", ylabel="Fisher(nuisance) / Fisher(class direction)",
                 title="(c) relative sensitivity by depth (thin: networks)")  # fmt: skip
    ax[1, 0].set_xticks(list(x), layers)
    ax[1, 0].legend(fontsize=8)
    for i, n in enumerate(s["nv_grid"]):
        m = [np.mean([r["normalised_variance"][n][ly] for r in rows]) for ly in layers]
        ax[1, 1].plot(x, m, "o-", color=f"C{i}", label=n)
    ax[1, 1].set(ylabel="normalised variance (mean over networks)",
                 title="(d) normalised variance (Quiroga et al.) by depth")  # fmt: skip
    ax[1, 1].set_xticks(list(x), layers)
    ax[1, 1].legend(fontsize=8)
    caption_command(fig, result)
    return save_figure(fig, path)


def _g(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def _ci(c: dict) -> str:
    return f"{_g(c['rho'])} [{_g(c['ci_low'])}, {_g(c['ci_high'])}]"


def _table(head: list[str], body: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in body),
    ]


def reading(result: dict[str, Any]) -> list[str]:
    s, an = result["settings"], result["analysis"]
    hl, corr = s["headline_layer"], an["spearman_iw"]
    out = []
    for n in s["nuisances"]:
        c = corr["fisher"][n][hl]
        sig = c["ci_low"] is not None and (c["ci_low"] > 0 or c["ci_high"] < 0)
        out.append(
            f"- IW vs {n} Fisher at `{hl}`: ρ = {_ci(c)}: "
            + (
                "the interval excludes 0."
                if sig
                else "the interval includes 0 (no evidence either way)."
            )
        )
    c = corr["fisher"][CLASS][hl]
    out.append(f"- IW vs class-direction Fisher at `{hl}` (control): ρ = {_ci(c)}.")
    c = corr["i_eff"].get(hl)
    if c:
        out.append(f"- IW vs I_eff at `{hl}`: ρ = {_ci(c)}.")
    n_net = len(result["networks"])
    for n, d in an["depth"].items():
        out.append(
            f"- Depth ({n}): the ratio to the class-direction Fisher falls with depth (Spearman over layers "
            f"< 0) in {d['n_decreasing']}/{n_net} networks (mean ρ {_g(d['mean_trend_rho'])}); last layer "
            f"below first in {d['n_first_above_last']}/{n_net}."
        )
    a = an["augmentation"]
    low = ", ".join(f"{ly} {a['n_lowered'][ly]}/{a['n_pairs']}" for ly in s["fisher_layers"])
    gm = ", ".join(f"{ly} ×{_g(a['geomean_ratio'][ly])}" for ly in s["fisher_layers"])
    out.append(
        f"- Augmentation lowers the translate-x Fisher in: {low} pairs (geometric-mean ratio {gm})."
    )
    for n, v in an["normalised_variance_vs_fisher"].items():
        out.append(
            f"- Normalised variance vs activation-Fisher profile across layers ({n}): mean ρ over networks "
            f"{_g(v['mean_rho_vs_fisher'])} (raw Fisher), {_g(v['mean_rho_vs_ratio'])} (ratio to class "
            "direction); ρ > 0 means the two measures rank the layers' (in)variance alike."
        )
    return out


CAVEATS = [
    '- The paper\'s chain is "low IW ⇒ low weight Fisher ⇒ low activation Fisher"; "⇒ invariance" needs the '
    "noisy representation to be *sufficient*, which is not shown (nor measured here): a network can have a low "
    "nuisance Fisher simply because it has a low Fisher for everything — hence the class-direction control.",
    "- Eq 10 (Brunel–Nadal) is undefined for compressive layers (dim z < dim x: |F_{z|x}| = 0); I_eff here is the "
    "Monte-Carlo mutual information of the linearised Gaussian channel with added activation noise ν (a lower "
    "bound that depends on ν), over the finite evaluation set (ceiling ln N).",
    "- The Fisher values depend on β through the posterior variances (mean term ∝ 1/β) and on the jitter for "
    "singular Σ_z (conv layers); all networks share β, λ, ν and the jitter, so their *ranks* are comparable.",
    "- With few networks (the factors are not independent draws) the bootstrap intervals are wide and "
    "approximate.",
]


def markdown(result: dict[str, Any]) -> str:
    s, rows, an = result["settings"], result["networks"], result["analysis"]
    layers, hl = s["fisher_layers"], s["headline_layer"]
    lines = [QUICK_BANNER, ""] if result.get("quick") else []
    lines += [
        "# Invariance: information in the weights vs nuisance Fisher of the activations",
        "",
        *([made_by_line(result["made_by"]), ""] if result.get("made_by") else []),
        f"{s['dataset_description']}, average-pooled {s['downsample']}× to {tuple(s['input_shape'])}; LeNet "
        f"channels {tuple(s['channels'])}, hidden {tuple(s['hidden'])} ({s['n_params']:,} parameters), same w0 "
        f"and data order; Adam lr {s['lr']:g}, {s['epochs']} epochs, batch {s['batch_size']}. Networks: "
        f"augmentation (random roll ±{s['shift']} px in x and y per batch) × random-label fraction "
        f"{list(s['fractions'])} × training weight noise σ {list(s['weight_noise'])}. IW: Fisher method, "
        f"diagonal, β = {s['beta']:g} per sample, λ = {s['prior_scale']:g}, P = N(w0, λ²I), on the first "
        f"{s['n_iw']} training images (their training labels). Activations on {s['n_eval']} fixed test images: "
        f"I_eff (gaussian, ν = {s['activation_variance']:g}, {s['eff_samples']} draws) at {list(s['eff_layers'])}; "
        f"activation Fisher (jitter {s['jitter']:g}) at {list(layers)} for {list(s['nuisances'])} and the class "
        f"direction x + θ·d, d = unit-norm (mean of class {s['class_pair'][0]} − mean of class "
        f"{s['class_pair'][1]}) over the training images. Normalised variance (Quiroga et al., tmeasures' "
        "definition implemented here: per unit mean_x Var_θ / mean_θ Var_x, mean over units with Var_x > 0) at "
        f"the θ grids {s['nv_grid']}. Correlations: Spearman across the {len(rows)} networks with a "
        f"{s['n_boot']}-resample bootstrap 95 % interval over networks (seed {s['seed']}).",
        "",
        "## Reading (generated from the numbers)",
        "",
        *reading(result),
        "",
        "Caveats:",
        "",
        *CAVEATS,
        "",
        "## Networks",
        "",
    ]
    lines += _table(
        ["network", "train acc", "test acc", "IW (nats)", *(f"I_eff {ly}" for ly in s["eff_layers"]), "time (s)"],
        [[r["name"], f"{r['train_acc']:.3f}", f"{r['test_acc']:.3f}", f"{r['iw']:,.0f}",
          *(f"{r['i_eff'][ly]:.3f}" for ly in s["eff_layers"]), f"{r['time_s']:.0f}"] for r in rows],
    )  # fmt: skip
    for n in [*s["nuisances"], CLASS]:
        lines += ["", f"Activation Fisher, {n} (nats per unit θ², per sample):", ""]
        lines += _table(
            ["network", *layers],
            [[r["name"], *(_g(r["fisher"][n][ly]) for ly in layers)] for r in rows],
        )
    lines += ["", "## Spearman ρ (IW vs ...) across networks, [95 % bootstrap CI]", ""]
    body = [
        [n, *(_ci(an["spearman_iw"]["fisher"][n][ly]) for ly in [*layers, "sum"])]
        for n in [*s["nuisances"], CLASS]
    ]
    body.append(["I_eff", *(_ci(an["spearman_iw"]["i_eff"][ly]) if ly in an["spearman_iw"]["i_eff"] else "—"
                            for ly in [*layers, "sum"])])  # fmt: skip
    lines += _table(["Fisher of", *layers, "sum over layers"], body)
    lines += ["", f"Headline layer: `{hl}` (the last hidden layer, the representation).", "",
              "## Depth: Fisher(nuisance) / Fisher(class direction), median over networks", ""]  # fmt: skip
    lines += _table(["nuisance", *layers, "mean trend ρ"],
                    [[n, *(_g(v) for v in d["median_ratio_per_layer"]), _g(d["mean_trend_rho"])]
                     for n, d in an["depth"].items()])  # fmt: skip
    a = an["augmentation"]
    lines += ["", "## Augmentation: translate-x Fisher with / without augmentation (pairs)", ""]
    lines += _table(["fraction", "σ", *layers],
                    [[f"{p['fraction']:g}", f"{p['weight_noise']:g}", *(_g(p["ratio_aug_over_plain"][ly]) for ly in layers)]
                     for p in a["pairs"]])  # fmt: skip
    lines += ["", "## Normalised variance (Quiroga et al.) per layer, mean over networks", ""]
    lines += _table(["nuisance", *layers, "ρ(NV, Fisher) across layers, mean over networks", "same, vs ratio"],
                    [[n, *(_g(float(np.mean([r["normalised_variance"][n][ly] for r in rows]))) for ly in layers),
                      _g(v["mean_rho_vs_fisher"]), _g(v["mean_rho_vs_ratio"])]
                     for n, v in an["normalised_variance_vs_fisher"].items()])  # fmt: skip
    t = rows[0]["times_s"] if rows else {}
    lines += ["", "## Cost", "",
              f"Total {result['time_s']:.0f} s; per network {_g(_mean([r['time_s'] for r in rows]))} s on average "
              "(first network: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()) + ").", "",
              "## Reproduce", "", f"`{(result.get('made_by') or {}).get('command') or result['command']}`", ""]  # fmt: skip
    return "\n".join(lines)
