"""The analysis, figure and markdown of the temperature reproduction (:mod:`.temperature`, Prop 2.8)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .._base.provenance import made_by_line
from . import QUICK_BANNER
from ._invariance_measures import format_rho_ci, spearman_ci

__all__ = ["analyse", "markdown", "plot", "reading", "write_outputs"]


def write_outputs(result: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """``temperature.{json,png,md}`` in ``out_dir`` (``_report_files.write_report``)."""
    from ._report_files import write_report

    return write_report(result, out_dir, "temperature", plot=plot, markdown=markdown)


def _slope_at_fixed_loss(runs: list[dict]) -> dict[str, Any]:
    """Least squares ln|F + δI| = a + b·log10 T + c·ln L: b, its standard error, c."""
    import numpy as np

    y = np.array([r["logdet"] for r in runs], float)
    A = np.column_stack(
        [
            np.ones(len(runs)),
            [math.log10(r["temperature"]) for r in runs],
            [math.log(max(r["loss"], 1e-300)) for r in runs],
        ]
    )
    if len(runs) <= 3 or np.linalg.matrix_rank(A) < 3:
        return {"per_decade_of_T": None, "stderr": None, "per_unit_ln_loss": None}
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    sigma2 = float(resid @ resid) / (len(y) - 3)
    cov = sigma2 * np.linalg.inv(A.T @ A)
    return {
        "per_decade_of_T": float(coef[1]),
        "stderr": float(math.sqrt(max(cov[1, 1], 0.0))),
        "per_unit_ln_loss": float(coef[2]),
    }


def analyse(runs: list[dict], s: dict[str, Any]) -> dict[str, Any]:
    """Spearman ρ(T, ln|F + δI|) (all runs and the equal-loss band, bootstrap CIs over runs), the slope of
    ln|F + δI| per decade of T at fixed ln L, and the per-T means (free energy included)."""

    nb = int(s["n_boot"])
    T = [r["temperature"] for r in runs]
    out: dict[str, Any] = {
        "rho_T_logdet": spearman_ci(T, [r["logdet"] for r in runs], n_boot=nb, seed=0),
        "rho_T_trace": spearman_ci(T, [r["trace"] for r in runs], n_boot=nb, seed=1),
        "rho_T_loss": spearman_ci(T, [r["loss"] for r in runs], n_boot=nb, seed=2),
        "rho_loss_logdet": spearman_ci(
            [r["loss"] for r in runs], [r["logdet"] for r in runs], n_boot=nb, seed=3
        ),
    }
    lnl = sorted(math.log(max(r["loss"], 1e-300)) for r in runs)
    med = (
        lnl[len(lnl) // 2] if len(lnl) % 2 else 0.5 * (lnl[len(lnl) // 2 - 1] + lnl[len(lnl) // 2])
    )
    w = float(s["band_ln_loss"])
    band = [r for r in runs if abs(math.log(max(r["loss"], 1e-300)) - med) <= w]
    out["band"] = {
        "loss_low": math.exp(med - w),
        "loss_high": math.exp(med + w),
        "n_runs": len(band),
        "n_temperatures": len({round(r["temperature"], 12) for r in band}),
        "rho_T_logdet": spearman_ci(
            [r["temperature"] for r in band], [r["logdet"] for r in band], n_boot=nb, seed=4
        ),
        "rho_T_loss": spearman_ci(
            [r["temperature"] for r in band], [r["loss"] for r in band], n_boot=nb, seed=5
        ),
    }
    out["slope_at_fixed_loss"] = _slope_at_fixed_loss(runs)
    per: dict[float, list[dict]] = {}
    for r in runs:
        per.setdefault(round(r["temperature"], 12), []).append(r)
    rows = []
    for t in sorted(per):
        g = per[t]

        def m(k, g=g):
            return sum(r[k] for r in g) / len(g)

        rows.append(
            {
                "temperature": t,
                "configs": sorted({(r["lr"], r["batch"]) for r in g}),
                "n_runs": len(g),
                "loss": m("loss"),
                "logdet": m("logdet"),
                "trace": m("trace"),
                "free_energy": m("free_energy"),
            }
        )
    out["per_temperature"] = rows
    rho = out["rho_T_logdet"]
    out["higher_T_lower_logdet"] = (
        rho["rho"] is not None and rho["ci_high"] is not None and rho["ci_high"] < 0
    )
    br = out["band"]["rho_T_logdet"]
    out["band_higher_T_lower_logdet"] = (
        br["rho"] is not None and br["ci_high"] is not None and br["ci_high"] < 0
    )
    fe = [row["free_energy"] for row in rows]
    out["free_energy_decreasing_in_T"] = all(b <= a for a, b in zip(fe, fe[1:]))
    return out


def reading(result: dict[str, Any]) -> list[str]:
    """The plain-language reading of the numbers, one bullet per line."""
    an, s = result["analysis"], result["settings"]
    b, sl = an["band"], an["slope_at_fixed_loss"]
    n = len(result["runs"])
    lines = [
        f"* All {n} runs: Spearman ρ(T, ln|F + δI|) = {format_rho_ci(an['rho_T_logdet'])} (95 % bootstrap CI over "
        f"runs); ρ(T, tr F) = {format_rho_ci(an['rho_T_trace'])}. 'Higher temperature → lower-Fisher minimum': "
        + ("HOLDS (CI below 0)." if an["higher_T_lower_logdet"] else "NOT SHOWN (CI not below 0)."),
        f"* But T also sets the training loss here: ρ(T, L) = {format_rho_ci(an['rho_T_loss'])}, and ρ(L, ln|F + δI|) = "
        f"{format_rho_ci(an['rho_loss_logdet'])}: at a fixed number of epochs η·steps = epochs·N·T, so a hotter run "
        "also trained longer and its Fisher fell with its loss.",
        f"* At equal loss — the {b['n_runs']} runs with L in [{b['loss_low']:.3g}, {b['loss_high']:.3g}] "
        f"nats (ln L within ± {s['band_ln_loss']:g} of the median; {b['n_temperatures']} distinct T): "
        f"ρ(T, ln|F + δI|) = {format_rho_ci(b['rho_T_logdet'])} (ρ(T, L) inside the band {format_rho_ci(b['rho_T_loss'])}). "
        "'Higher T selects lower-Fisher minima at equal loss': "
        + ("HOLDS in the band." if an["band_higher_T_lower_logdet"] else "NOT SHOWN in the band."),
    ]
    if sl["per_decade_of_T"] is not None:
        lines.append(
            f"* Regression over all runs, ln|F + δI| = a + b·log10 T + c·ln L: b = "
            f"{sl['per_decade_of_T']:+.1f} ± {sl['stderr']:.1f} nats per decade of T at fixed loss "
            f"(c = {sl['per_unit_ln_loss']:+.1f} nats per unit ln L)."
            + (
                f" T and ln L are almost collinear here (|ρ(T, L)| = {abs(an['rho_T_loss']['rho']):.2f}), so b "
                "extrapolates beyond the data and is not evidence either way."
                if abs(an["rho_T_loss"]["rho"]) > 0.9
                else ""
            )
        )
    rows = an["per_temperature"]
    lines.append(
        "* Free energy L + (T/2) ln|F + δI| per T (means over runs): "
        + "; ".join(f"T = {r['temperature']:.3g}: {r['free_energy']:.4g}" for r in rows)
        + ". It is dominated by (T/2)·ln|F + δI| < 0 (ln|F + δI| ≈ P·ln δ from F's null directions), so it "
        "falls with T by construction; it is not a test of the proposition."
    )
    lines.append(
        "* [A]'s caveat: for minima of equal loss under isotropic noise the free energy's preference between "
        "them does not depend on T; a flat-minimum bias that grows with T comes from SGD's "
        "curvature-proportional noise. This experiment uses real SGD noise, so it cannot separate the two."
    )
    return lines


def plot(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """(left) ln|F + δI| vs T (log x) coloured by B; (right) loss vs ln|F + δI| coloured by B."""
    from ..report.plots import figure, save_figure

    runs, s = result["runs"], result["settings"]
    fig = figure(11.0, 4.5)
    a, c = fig.subplots(1, 2)
    for i, b in enumerate(s["batch_sizes"]):
        rs = [r for r in runs if r["batch"] == b]
        a.scatter(
            [r["temperature"] for r in rs],
            [r["logdet"] for r in rs],
            s=18,
            color=f"C{i}",
            label=f"B = {b}",
        )
        c.scatter(
            [r["logdet"] for r in rs],
            [r["loss"] for r in rs],
            s=18,
            color=f"C{i}",
            label=f"B = {b}",
        )
    a.set_xscale("log")
    a.set_xlabel("T = η / B")
    a.set_ylabel(f"ln|F + δI|  (δ = {s['damping']:g}) [nats]")
    a.set_title(
        f"{s['dataset']} N = {s['n_train_used']}, MLP P = {s['n_params']}, {s['epochs']} epochs"
    )
    a.legend(fontsize=8)
    c.set_yscale("log")
    c.set_xlabel("ln|F + δI| [nats]")
    c.set_ylabel("train loss L [nats / sample]")
    c.legend(fontsize=8)
    cmd = (result.get("made_by") or {}).get("command") or result["command"]
    fig.text(0.01, 0.005, cmd, fontsize=7)
    return save_figure(fig, path)


def markdown(result: dict[str, Any]) -> str:
    s, an = result["settings"], result["analysis"]
    lines = [QUICK_BANNER, ""] if result.get("quick") else []
    lines += [
        "# Prop 2.8: SGD temperature and the Fisher of the minimum (Achille, Paolini & Soatto 2019)",
        "",
        *([made_by_line(result["made_by"]), ""] if result.get("made_by") else []),
        f"{s['dataset']}: the first {s['n_train_used']} training images ({s['n_inputs']} inputs, "
        f"{s['n_classes']} classes). MLP {s['n_inputs']}-{s['hidden']}-{s['n_classes']} {s['activation']}, "
        f"P = {s['n_params']} weights. Plain SGD (no momentum, no weight decay), η ∈ {s['lrs']}, "
        f"B ∈ {s['batch_sizes']}, {s['seeds']} seeds each (init and batch order), {s['epochs']} epochs for "
        f"every run; T = η/B. At the end, on the training set: L (mean cross-entropy), ln|F + δI| of the exact "
        f"dense Fisher (labels from the model, δ = {s['damping']:g}), tr F "
        "(`weightinfo.dynamics.Tracker`), and the free energy L + (T/2) ln|F + δI| (Prop 2.8, paper.md §4).",
        "",
        "![temperature](temperature.png)",
        "",
        "## Reading (generated from the numbers)",
        "",
        *reading(result),
        "",
        "Caveats: one small network on one small task; ln|F + δI| depends on δ (most of F's eigenvalues are "
        "below it); at a fixed number of epochs the temperature also sets how far training got, which is why "
        "the equal-loss band and the regression with ln L are reported.",
        "",
        "## Per temperature (means over runs)",
        "",
        "| T = η/B | (η, B) | runs | L | ln|F + δI| | tr F | free energy |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in an["per_temperature"]:
        cfg = ", ".join(f"({lr:g}, {b})" for lr, b in r["configs"])
        lines.append(
            f"| {r['temperature']:.3g} | {cfg} | {r['n_runs']} | {r['loss']:.4g} | {r['logdet']:.1f} | "
            f"{r['trace']:.4g} | {r['free_energy']:.4g} |"
        )
    lines += ["", "## Every run", "", "| η | B | seed | T | L | accuracy | ln|F + δI| | tr F | free energy |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in result["runs"]:
        acc = "" if r.get("accuracy") is None else f"{r['accuracy']:.3f}"
        lines.append(
            f"| {r['lr']:g} | {r['batch']} | {r['seed']} | {r['temperature']:.3g} | {r['loss']:.4g} | {acc} | "
            f"{r['logdet']:.1f} | {r['trace']:.4g} | {r['free_energy']:.4g} |"
        )
    t = result.get("times_s", {})
    lines += ["", "## Cost", "",
              f"Total {result['time_s']:.1f} s (training {t.get('train', 0):.1f} s, Fisher "
              f"{t.get('fisher', 0):.1f} s), {result['machine'].get('torch_threads', '?')} torch thread(s).", "",
              "## Reproduce", "", f"`{(result.get('made_by') or {}).get('command') or result['command']}`", ""]  # fmt: skip
    return "\n".join(lines)
