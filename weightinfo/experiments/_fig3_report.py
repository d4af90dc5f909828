"""The analysis, figure and markdown of the Fig 3 reproduction (:mod:`.fig3`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._base.provenance import made_by_line
from . import QUICK_BANNER
from ._report_files import caption_command

__all__ = ["analyse", "markdown", "plot", "reading", "write_outputs"]

_KEYS = {
    "mean_ln_fisher": "E ln F",
    "shannon_joint": "paper-style I(θ; D, seed) (seeds pooled)",
    "shannon_seed_averaged": "seed-averaged I(θ; D)",
    "shannon_per_seed": "I(θ; D | seed)",
    "piece_entropy": "entropy of the piece reached",
}


def write_outputs(result: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """``fig3.{json,png,md}`` in ``out_dir`` (``_report_files.write_report``)."""
    from ._report_files import write_report

    return write_report(result, out_dir, "fig3", plot=plot, markdown=markdown)


def analyse(rows: list[dict]) -> dict[str, Any]:
    """For each quantity: its value at the smallest and the largest batch, the change, and whether it is
    monotone in B. "Flat": the change from the largest to the smallest batch is below 0.1 nats and below 3
    combined Monte Carlo standard errors + 0.05 nats."""
    rs = sorted(rows, key=lambda r: r["batch"])
    small, large = rs[0], rs[-1]
    out: dict[str, Any] = {"smallest_batch": small["batch"], "largest_batch": large["batch"]}
    for k in _KEYS:
        vals = [r[k] for r in rs]
        inc = all(b >= a for a, b in zip(vals, vals[1:]))
        dec = all(b <= a for a, b in zip(vals, vals[1:]))
        change = small[k] - large[k]
        se = (small.get(k + "_stderr", 0.0) ** 2 + large.get(k + "_stderr", 0.0) ** 2) ** 0.5
        out[k] = {
            "at_smallest_batch": small[k],
            "at_largest_batch": large[k],
            "change_small_minus_large": change,
            "mc_stderr_of_change": se,
            "monotone_increasing_in_batch": inc,
            "monotone_decreasing_in_batch": dec,
            "lower_at_smaller_batch": change < 0,
            "flat": abs(change) < 0.1 and abs(change) < 3 * se + 0.05,
            # End to end is not the whole story: the range over every batch size, and where it is lowest.
            "range_over_batches": max(vals) - min(vals),
            "lowest_at_batch": rs[vals.index(min(vals))]["batch"],
        }
    return out


def reading(result: dict[str, Any]) -> list[str]:
    """The plain-language reading of the numbers, one bullet per line."""
    an = result["analysis"]
    bs, bl = an["smallest_batch"], an["largest_batch"]

    def d(k, unit=" nats"):
        a = an[k]
        return (
            f"{a['at_largest_batch']:.3f}{unit} (B = {bl}) → {a['at_smallest_batch']:.3f}{unit} (B = {bs}), "
            f"change {a['change_small_minus_large']:+.3f}"
            + (f" ± {a['mc_stderr_of_change']:.3f} (MC)" if a["mc_stderr_of_change"] > 0 else "")
            + (", monotone in B" if a["monotone_increasing_in_batch"] or a["monotone_decreasing_in_batch"] else ", not monotone in B")
        )  # fmt: skip

    f, j, sa = an["mean_ln_fisher"], an["shannon_joint"], an["shannon_seed_averaged"]
    lines = [
        f"* E ln F: {d('mean_ln_fisher', '')}. Paper's trend 'smaller batch → lower Fisher': "
        + ("HOLDS." if f["lower_at_smaller_batch"] else "DOES NOT HOLD."),
        f"* Paper-style information (all K·S runs pooled, I(θ; D, seed), what the paper's Fig 3 computes): "
        f"{d('shannon_joint')}. 'Smaller batch → lower information' for this estimator: "
        + ("HOLDS." if j["lower_at_smaller_batch"] and not j["flat"] else "DOES NOT HOLD."),
        f"* Seed-averaged I(θ; D) (Q(θ|D) averaged over seeds, paper.md §1.3): {d('shannon_seed_averaged')}. "
        "The rebuild's finding that it is flat: "
        + (
            (
                "HOLDS (change within 0.1 nats and MC noise)."
                if sa["range_over_batches"] < 0.1
                else "HOLDS end to end only (change within 0.1 nats and MC noise), not across batch sizes: "
                f"it ranges over {sa['range_over_batches']:.3f} nats, lowest at B = {sa['lowest_at_batch']}."
            )
            if sa["flat"]
            else (
                "DOES NOT HOLD — it falls at smaller batch."
                if sa["lower_at_smaller_batch"]
                else "DOES NOT HOLD — it rises at smaller batch (opposite to the paper's trend)."
            )
        ),
        f"* I(θ; D | seed): {d('shannon_per_seed')}; entropy of the piece reached: "
        f"{d('piece_entropy')}.",
        f"* The start θ_0 ∼ U[−{result['settings']['init_range']:g}, {result['settings']['init_range']:g}] is "
        "this reproduction's choice ([A]'s rebuild does not state one); the absolute values, and whether the "
        "piece entropy rises or falls with B, depend on it.",
        "* Compare [A]'s rebuild (B = 100 → 1): E ln F 10.84 → 10.36; paper-style 3.95 → 3.42; seed-averaged "
        "1.54 → 1.61 (flat); piece entropy 2.45 → 2.19. The paper (per the annotation): ≈ 3.8 → ≈ 2.4 nats.",
    ]
    return lines


def plot(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """(left) E ln F vs B; (right) the information estimates and the piece entropy vs B."""
    from ..report.plots import figure, save_figure

    s, rows = result["settings"], sorted(result["batches"], key=lambda r: r["batch"])
    b = [r["batch"] for r in rows]
    fig = figure(11.0, 4.5)
    a, c = fig.subplots(1, 2)
    a.errorbar(b, [r["mean_ln_fisher"] for r in rows], fmt="o-", color="C0")
    a.set_xscale("log")
    a.set_xlabel("batch size B")
    a.set_ylabel("E ln F  (F = N s²)")
    a.set_title(
        f"zigzag toy, K = {s['n_datasets']} × S = {s['seeds']}, η = {s['lr']:g}, {s['n_steps']} steps"
    )
    for i, k in enumerate(
        ["shannon_joint", "shannon_seed_averaged", "shannon_per_seed", "piece_entropy"]
    ):
        err = [r.get(k + "_stderr", 0.0) for r in rows]
        c.errorbar(
            b, [r[k] for r in rows], yerr=err, fmt="o-", ms=4, color=f"C{i + 1}", label=_KEYS[k]
        )
    c.set_xscale("log")
    c.set_xlabel("batch size B")
    c.set_ylabel("nats")
    c.legend(fontsize=8)
    caption_command(fig, result)
    return save_figure(fig, path)


def markdown(result: dict[str, Any]) -> str:
    s, rows = result["settings"], sorted(result["batches"], key=lambda r: r["batch"])
    sl = s["slopes"]
    lines = [QUICK_BANNER, ""] if result.get("quick") else []
    lines += [
        "# Fig 3: the zigzag toy — batch size, Fisher and information (Achille, Paolini & Soatto 2019)",
        "",
        *([made_by_line(result["made_by"]), ""] if result.get("made_by") else []),
        f"μ ∼ U[−1, 1], D = {{x_i}}, N = {s['n']}, x_i ∼ N(μ, 1); L_D(θ) = (1/N) Σ (x_i − φ(θ))². Zigzag φ: "
        f"{s['pieces_per_side']} pieces per side on [−{s['half_width']:g}, {s['half_width']:g}], widths ×"
        f"{s['width_ratio']:g} outwards, φ = ±{s['amplitude']:g} alternating at the knots (φ(0) = "
        f"{s['amplitude']:g}, even), |slope| {abs(sl[len(sl) // 2]):.1f} → {abs(sl[-1]):.2f}; outer pieces "
        f"extended linearly. SGD (batch indices with replacement; B = N is GD), η = {s['lr']:g}, "
        f"{s['n_steps']:,} steps, init θ_0 ∼ U[−{s['init_range']:g}, {s['init_range']:g}]; K = "
        f"{s['n_datasets']} datasets × S = {s['seeds']} seeds (the seed fixes init and batches, shared across "
        f"datasets). Q(θ|D, seed) = N(θ_T, 1/F), F = N s² of the piece holding θ_T (β = 1). Information by the "
        f"mixture Monte Carlo estimator ({s['mc_samples']} draws per run), ceilings ln KS = "
        f"{s['ceiling_joint']:.2f} (pooled) and ln K = {s['ceiling_seed_averaged']:.2f} (seed-averaged, "
        "per-seed).",
        "",
        "![fig3](fig3.png)",
        "",
        "## Reading (generated from the numbers)",
        "",
        *reading(result),
        "",
        "Caveats: the paper's geometry, η, steps and init are unstated; this follows [A]'s rebuild where "
        "known (the init range is this reproduction's choice), so only the trends are comparable. "
        "Mixture estimates are those of the empirical distribution of the K datasets (≤ ln K, ln KS).",
        "",
        "## Per batch size",
        "",
        "| B | η/B | E ln F | sd ln F | paper-style (pooled) | seed-averaged | per-seed | H(piece) | "
        "mean |φ(θ_T) − x̄| |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch']} | {r['temperature_lr_over_b']:.2g} | {r['mean_ln_fisher']:.3f} | "
            f"{r['std_ln_fisher']:.3f} | {r['shannon_joint']:.3f} ± {r['shannon_joint_stderr']:.3f} | "
            f"{r['shannon_seed_averaged']:.3f} ± {r['shannon_seed_averaged_stderr']:.3f} | "
            f"{r['shannon_per_seed']:.3f} | {r['piece_entropy']:.3f} | {r['mean_abs_residual']:.3g} |"
        )
    lines += [
        "",
        "Runs ending on each piece (left to right, |slope| "
        + ", ".join(f"{abs(z):.1f}" for z in sl)
        + "):",
        "",
    ]
    lines += [f"* B = {r['batch']}: {r['piece_counts']}" for r in rows]
    t = result.get("times_s", {})
    lines += ["", "## Cost", "",
              f"Total {result['time_s']:.1f} s (training {t.get('train', 0):.1f} s, information estimates "
              f"{t.get('information', 0):.1f} s).", "",
              "## Reproduce", "", f"`{(result.get('made_by') or {}).get('command') or result['command']}`", ""]  # fmt: skip
    return "\n".join(lines)
