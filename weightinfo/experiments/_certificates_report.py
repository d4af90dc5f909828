"""Report of the certificate experiments (:mod:`weightinfo.experiments.certificates`).

:func:`write_outputs` writes ``<stem>.json``, ``<stem>.png`` and ``<stem>.md`` from the result dict of a
``run_*`` function; :func:`plot` draws the certificates as stacked bars (empirical Gibbs risk + MC gap
û − L̂ + complexity gap kl⁻¹(û, B/n) − û = the certificate) and the screened information grid;
:func:`markdown` renders the tables. Everything works from the result dict alone, so a saved JSON can be
re-rendered: ``write_outputs(json.load(...), out_dir, stem)``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .._base.provenance import made_by_line
from . import QUICK_BANNER
from ._report_files import caption_command

__all__ = ["markdown", "plot", "rows", "table", "write_outputs"]


def write_outputs(result: dict[str, Any], out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """``<stem>.json``, ``<stem>.png`` and ``<stem>.md`` in ``out_dir`` (``_report_files.write_report``)."""
    from ._report_files import write_report

    return write_report(result, out_dir, stem, plot=plot, markdown=markdown)


def rows(result: dict[str, Any]) -> list[dict]:
    """The final certificates of a run (optimised, information), those present."""
    return [result[k] for k in ("optimized", "information") if result.get(k)]


def _label(r: dict) -> str:
    if r["posterior"] == "information":
        if "finetune_lr" not in r:
            return f"information β={r['beta']:g}"
        return f"information β={r['beta']:g}, fine-tune lr {r['finetune_lr']:g}"
    return f"optimised {r['objective']}"


def candidates_table(grid: list[dict]) -> list[str]:
    """The screened candidates of a declared set, best first."""
    lines = [
        "| candidate | KL nats | screen emp. risk | screen certificate |",
        "| --- | --- | --- | --- |",
    ]
    for g in sorted(grid, key=lambda g: g["screen_bound"]):
        lines.append(
            f"| {g['candidate']} | {g['kl_nats']:.2f} | {g['screen_emp']:.4f} "
            f"| {g['screen_bound']:.4f} |"
        )
    return lines


def _f(x, fmt="{:.4f}") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def table(results: dict[str, dict]) -> list[str]:
    """Markdown table of the final certificates of several runs (``{name: result}``)."""
    head = (
        "| run | posterior | σ0 | K | n | m | KL nats | emp. Gibbs risk | MC upper | risk certificate "
        "| stoch. test error | mean-net test error | certify s | run s |"
    )
    lines = [head, "|" + " --- |" * 14]
    for name, res in results.items():
        for r in rows(res):
            lines.append(
                f"| {name} | {_label(r)} | {r['prior_scale']:.4g} | {r['k_union']} | {r['n_bound']} "
                f"| {r['m']} | {r['kl_nats']:.1f} | {r['empirical_risk']:.4f} | {r['mc_upper']:.4f} "
                f"| **{r['risk_bound']:.4f}** | {_f(r.get('test_error'))} "
                f"| {_f(r.get('mean_test_error'))} | {r['wall_time_s']:.0f} "
                f"| {res.get('total_wall_s', math.nan):.0f} |"
            )
    return lines


def _grid_table(grid: list[dict]) -> list[str]:
    lines = [
        "| fine-tune lr | σ0 | β | KL nats | screen emp. risk | screen certificate |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for g in sorted(grid, key=lambda g: g["screen_bound"]):
        lines.append(
            f"| {g['finetune_lr']:g} | {g['prior_scale']:g} | {g['beta']:g} | {g['kl_nats']:.1f} "
            f"| {g['screen_emp']:.4f} | {g['screen_bound']:.4f} |"
        )
    return lines


def markdown(result: dict[str, Any]) -> str:
    """The report of one ``run_*`` result: certificates, best, screened grid, settings, machine."""
    name = (rows(result) or [{}])[0].get("dataset", "certificates")
    best = result.get("best", {})
    out = [QUICK_BANNER, ""] if result.get("quick") else []
    out += [f"# PAC-Bayes risk certificates: {name}", ""]
    if result.get("made_by"):
        out += [made_by_line(result["made_by"]), ""]
    if best:
        split = (
            f"δ′ = 0.01 split over the {best['of']} final Monte Carlo estimates"
            if best["of"] > 1
            else "δ′ = 0.01"
        )
        kind = "optimised" if best["posterior"] == "optimize" else best["posterior"]
        out += [
            f"Best certificate **{best['risk_bound']:.4f}** ({kind} posterior) on the 0-1 risk of the "
            f"stochastic predictor, with probability ≥ 0.965 (δ = 0.025 split over K = "
            f"{best['k_union']} certificates on this bound set, {split}). Whole run: "
            f"{result.get('total_wall_s', math.nan):.0f} s.",
            "",
        ]
    out += table({name: result}) + [""]
    if "prior_mean_test_error" in result:
        out += [
            f"Prior mean: trained on {result['n_prior']} images in {result['prior_train_s']:.0f} s "
            f"({'loaded from cache' if result.get('prior_cached') else 'trained in this run'}), "
            f"test error {result['prior_mean_test_error']:.4f}; bound set n = {result['n_bound']}.",
            "",
        ]
    if result.get("prior_training"):
        t = result["prior_training"]
        out += [
            f"Prior mean: trained on {result['n_prior']} images for {t['epochs_run']} epochs; bound set "
            f"n = {result['n_bound']}.",
            "",
        ]
    if result.get("grid"):
        out += ["## Declared set (screened on the bound set; every candidate is in K)", ""]
        out += candidates_table(result["grid"]) + [""]
    if result.get("information_grid"):
        out += [
            "## Information-posterior grid (screened on the bound set; every point is in K)",
            "",
        ]
        out += _grid_table(result["information_grid"]) + [""]
    s = result.get("settings", {})
    out += ["## Settings", "", "```", *(f"{k} = {v}" for k, v in s.items()), "```", ""]
    if result.get("machine"):
        out += [f"Machine: {result['machine']}", ""]
    return "\n".join(out)


def plot(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Stacked bars of each certificate's terms, and the screened information grid (if any)."""
    from ..report.plots import figure, save_figure

    grid = result.get("information_grid") or []
    fig = figure(5.0 + (6.0 if grid else 0.0), 4.2)
    axes = fig.subplots(1, 2 if grid else 1, squeeze=False)[0]
    ax = axes[0]
    certs = rows(result)
    names = [
        f"{_label(r).split(',')[0]}\nσ0 {r['prior_scale']:g}, KL {r['kl_nats']:.1f}" for r in certs
    ]
    parts = [
        ("empirical Gibbs risk", [r["empirical_risk"] for r in certs], "C0"),
        ("MC gap", [r["mc_upper"] - r["empirical_risk"] for r in certs], "C1"),
        ("complexity gap", [r["risk_bound"] - r["mc_upper"] for r in certs], "C2"),
    ]
    bottom = [0.0] * len(certs)
    for label, vals, color in parts:
        ax.bar(names, vals, bottom=bottom, color=color, label=label, width=0.6)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, r in enumerate(certs):
        ax.text(i, r["risk_bound"], f"{r['risk_bound']:.4f}", ha="center", va="bottom", fontsize=8)
        if r.get("test_error") is not None:
            ax.plot([i - 0.3, i + 0.3], [r["test_error"]] * 2, "k--", lw=1)
    ax.plot([], [], "k--", lw=1, label="stochastic test error")
    ax.set_ylabel("0-1 risk")
    # Zoomed: the bars share most of their height (the empirical risk); the numbers are printed.
    lo = 0.8 * min([r["empirical_risk"] for r in certs] + [1.0])
    ax.set_ylim(lo, max([r["risk_bound"] for r in certs] + [lo]) * 1.05 + 1e-3)
    ax.legend(fontsize=7.5, loc="lower right")
    ax.set_title(f"certificates (K = {certs[0]['k_union'] if certs else '—'})", fontsize=10)
    if grid:
        ax = axes[1]
        lrs = sorted({g["finetune_lr"] for g in grid})
        scales = sorted({g["prior_scale"] for g in grid})
        markers = "os^Dv<>p"
        for i, lam in enumerate(scales):
            for j, lr in enumerate(lrs):
                pts = sorted(
                    (g["beta"], g["screen_bound"])
                    for g in grid
                    if g["prior_scale"] == lam and g["finetune_lr"] == lr
                )
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    marker=markers[j % len(markers)],
                    color=f"C{i}",
                    lw=0.8,
                    label=f"σ0 {lam:g}" if j == 0 else None,
                )
        for j, lr in enumerate(lrs):
            ax.plot([], [], markers[j % len(markers)], color="gray", label=f"fine-tune lr {lr:g}")
        ax.set_xscale("log")
        ax.set_xlabel("β")
        ax.set_ylabel("screening certificate")
        lo = min(g["screen_bound"] for g in grid)
        ax.set_ylim(lo - 0.005, min(1.0, lo + 0.1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        ax.set_title("information posterior, screened grid", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    caption_command(fig, result)
    return save_figure(fig, path)
