"""The analysis, figure and markdown of the Fig 4 reproduction (:mod:`.fig4`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._base.provenance import made_by_line
from . import QUICK_BANNER
from ._invariance_measures import format_rho_ci, spearman_ci
from ._report_files import caption_command

__all__ = ["analyse", "markdown", "plot", "reading", "write_outputs"]


def write_outputs(result: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """``fig4.{json,png,md}`` in ``out_dir`` (``_report_files.write_report``)."""
    from ._report_files import write_report

    return write_report(result, out_dir, "fig4", plot=plot, markdown=markdown)


def _means(runs: list[dict], key: str) -> list[dict[str, Any]]:
    per: dict[Any, list[dict]] = {}
    for r in runs:
        per.setdefault(r[key], []).append(r)
    rows = []
    for v in sorted(per):
        g = per[v]
        rows.append(
            {
                key: v,
                "n_runs": len(g),
                "lr": g[0]["lr"],
                "batch": g[0]["batch"],
                "trace": sum(r["trace"] for r in g) / len(g),
                "loss": sum(r["loss"] for r in g) / len(g),
                "accuracy": sum(r["accuracy"] for r in g) / len(g),
            }
        )
    return rows


def _holds(d: dict, sign: int) -> bool:
    """The CI lies strictly on the side ``sign`` of 0."""
    if d["rho"] is None or d["ci_low"] is None:
        return False
    return d["ci_low"] > 0 if sign > 0 else d["ci_high"] < 0


def analyse(batch_runs: list[dict], class_runs: list[dict], s: dict[str, Any]) -> dict[str, Any]:
    """Spearman ρ(B, tr F) per schedule and ρ(k, tr F) (bootstrap CIs over runs), and the means per value."""

    nb = int(s["n_boot"])
    out: dict[str, Any] = {"batch": {}, "classes": {}}
    for i, sch in enumerate(("fixed_lr", "fixed_T")):
        rs = [r for r in batch_runs if r["schedule"] == sch]
        rho = spearman_ci([r["batch"] for r in rs], [r["trace"] for r in rs], n_boot=nb, seed=i)
        out["batch"][sch] = {
            "rho_B_trace": rho,
            "rho_B_loss": spearman_ci(
                [r["batch"] for r in rs], [r["loss"] for r in rs], n_boot=nb, seed=10 + i
            ),
            "per_batch": _means(rs, "batch"),
            "smaller_batch_smaller_trace": _holds(rho, +1),
        }
    rho = spearman_ci(
        [r["k"] for r in class_runs], [r["trace"] for r in class_runs], n_boot=nb, seed=20
    )
    out["classes"] = {
        "rho_k_trace": rho,
        "rho_k_loss": spearman_ci(
            [r["k"] for r in class_runs], [r["loss"] for r in class_runs], n_boot=nb, seed=21
        ),
        "per_k": _means(class_runs, "k"),
        "more_classes_larger_trace": _holds(rho, +1),
    }
    return out


def reading(result: dict[str, Any]) -> list[str]:
    """The plain-language reading of the numbers, one bullet per line."""
    an, s = result["analysis"], result["settings"]
    lines = []
    names = {
        "fixed_lr": f"fixed η = {s['lr']:g}",
        "fixed_T": f"fixed T = η/B = {s['temperature']:.3g}",
    }
    for sch, a in an["batch"].items():
        per = "; ".join(f"B = {r['batch']}: {r['trace']:.4g}" for r in a["per_batch"])
        lines.append(
            f"* (a) {names[sch]}: ρ(B, tr F) = {format_rho_ci(a['rho_B_trace'])} (95 % bootstrap CI over runs); mean tr F "
            f"{per}; ρ(B, L) = {format_rho_ci(a['rho_B_loss'])}. Paper's claim 'smaller batch ⇒ smaller tr F': "
            + (
                "HOLDS here (CI above 0)."
                if a["smaller_batch_smaller_trace"]
                else "NOT SHOWN here (CI not above 0)."
            )
        )
    c = an["classes"]
    per = "; ".join(f"k = {r['k']}: {r['trace']:.4g}" for r in c["per_k"])
    lines.append(
        f"* (b) ρ(k, tr F) = {format_rho_ci(c['rho_k_trace'])}; mean tr F {per}; ρ(k, L) = {format_rho_ci(c['rho_k_loss'])}. "
        "Paper's claim 'more classes ⇒ larger tr F': "
        + (
            "HOLDS here (CI above 0)."
            if c["more_classes_larger_trace"]
            else "NOT SHOWN here (CI not above 0)."
        )
    )
    lines.append(
        f"* Controlled in (b): the same N = {s['n_train']} training images, the same 10-output model, η, B and "
        "number of SGD steps for every k. Still confounded: images per class (N/k), which classes (the first k "
        "of Fashion-MNIST differ in difficulty), the final training loss reached, and the probe set (each run's "
        "own training images, so its class mix changes with k)."
    )
    lines.append(
        f"* Only {s['seeds']} seeds per point: the CIs are wide. Fashion-MNIST + LeNet on {s['n_train']} images "
        "stand in for the paper's CIFAR-10 + ResNet-18 (not available offline)."
    )
    return lines


def plot(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """(left) tr F vs B (log x) for both schedules; (right) tr F vs k."""
    from ..report.plots import figure, save_figure

    s = result["settings"]
    fig = figure(11.0, 4.5)
    a, c = fig.subplots(1, 2)
    labels = {
        "fixed_lr": f"fixed η = {s['lr']:g}",
        "fixed_T": f"fixed η/B = {s['temperature']:.3g}",
    }
    for i, sch in enumerate(("fixed_lr", "fixed_T")):
        rs = [r for r in result["batch_runs"] if r["schedule"] == sch]
        a.scatter(
            [r["batch"] for r in rs],
            [r["trace"] for r in rs],
            s=18,
            color=f"C{i}",
            label=labels[sch],
        )
        m = result["analysis"]["batch"][sch]["per_batch"]
        a.plot([r["batch"] for r in m], [r["trace"] for r in m], color=f"C{i}")
    a.set_xscale("log", base=2)
    a.set_xlabel("batch size B")
    a.set_ylabel(f"tr F (probe: {s['n_probe']} train images)")
    a.set_title(f"{s['dataset']} N = {s['n_train']}, {s['model']}, {s['epochs']} epochs")
    a.legend(fontsize=8)
    rs = result["class_runs"]
    c.scatter([r["k"] for r in rs], [r["trace"] for r in rs], s=18, color="C2", label="runs")
    m = result["analysis"]["classes"]["per_k"]
    c.plot([r["k"] for r in m], [r["trace"] for r in m], color="C2", label="mean")
    c.set_xlabel("number of classes k (first k; same N, 10 outputs)")
    c.set_ylabel("tr F at the end of training")
    c.legend(fontsize=8)
    caption_command(fig, result)
    return save_figure(fig, path)


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [QUICK_BANNER, ""] if result.get("quick") else []
    lines += [
        "# Fig 4: tr F vs batch size and vs number of classes (Achille, Paolini & Soatto 2019)",
        "",
        *([made_by_line(result["made_by"]), ""] if result.get("made_by") else []),
        "The paper used ResNet-18 on CIFAR-10 (30 epochs); neither is available offline here, so this uses "
        f"{s['dataset']} and a {s['model']} ({s['n_params']} weights, {s['n_outputs']} outputs) on "
        f"N = {s['n_train']} training images, {s['epochs']} epochs of plain SGD (no momentum, no weight decay), "
        f"{s['seeds']} seeds per point. (a) B ∈ {s['batch_sizes']} at fixed η = {s['lr']:g} and at fixed "
        f"T = η/B = {s['temperature']:.4g}. (b) the first N images with label < k, k ∈ {s['ks']}, η = {s['lr']:g}, "
        f"B = {s['batch_classes']}. At the end: exact tr F (labels from the model) on the first {s['n_probe']} "
        "images of the run's training set (`weightinfo.dynamics.Tracker`).",
        "",
        "![fig4](fig4.png)",
        "",
        "## Reading (generated from the numbers)",
        "",
        *reading(result),
        "",
        "## Every run",
        "",
        "| panel | schedule / k | η | B | seed | N | steps | train L | accuracy | tr F |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["batch_runs"] + result["class_runs"]:
        panel, tag = ("a", r["schedule"]) if "schedule" in r else ("b", f"k = {r['k']}")
        lines.append(
            f"| {panel} | {tag} | {r['lr']:.4g} | {r['batch']} | {r['seed']} | {r['n_train']} | {r['steps']} | "
            f"{r['loss']:.4g} | {r['accuracy']:.3f} | {r['trace']:.4g} |"
        )
    t = result.get("times_s", {})
    lines += ["", "## Cost", "",
              f"Total {result['time_s']:.1f} s (training {t.get('train', 0):.1f} s, Fisher "
              f"{t.get('fisher', 0):.1f} s), {result['machine'].get('torch_threads', '?')} torch thread(s).", "",
              "## Reproduce", "", f"`{(result.get('made_by') or {}).get('command') or result['command']}`", ""]  # fmt: skip
    return "\n".join(lines)
