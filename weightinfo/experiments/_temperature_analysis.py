"""The analysis of the temperature reproduction (:mod:`.temperature`, Prop 2.8 at equal loss): Spearman ρ with
bootstrap CIs per target loss, the residual-loss checks, the seed-paired reading, linear scaling and per-T means."""

from __future__ import annotations

import math
from typing import Any

from ._invariance_measures import spearman_ci

__all__ = ["analyse", "verdict"]


def verdict(ci_low: float | None, ci_high: float | None) -> str:
    """'higher T → lower Fisher' from a CI of ρ(T, Fisher): HOLDS below 0, DOES NOT HOLD above 0."""
    if ci_low is None or ci_high is None:
        return "NOT SHOWN"
    if ci_high < 0:
        return "HOLDS"
    if ci_low > 0:
        return "DOES NOT HOLD"
    return "NOT SHOWN"


def _slope_at_fixed_loss(runs: list[dict]) -> dict[str, Any]:
    """Least squares ln|F + δI| = a + b·log10 T + c·ln L_stop: b, its standard error, c."""
    import numpy as np

    none = {"per_decade_of_T": None, "stderr": None, "per_unit_ln_loss": None}
    if len(runs) <= 3:
        return none
    y = np.array([r["logdet"] for r in runs], float)
    A = np.column_stack(
        [
            np.ones(len(runs)),
            [math.log10(r["temperature"]) for r in runs],
            [math.log(max(r["loss_stop"], 1e-300)) for r in runs],
        ]
    )
    if np.linalg.matrix_rank(A) < 3:
        return none
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    sigma2 = float(resid @ resid) / (len(y) - 3)
    cov = sigma2 * np.linalg.inv(A.T @ A)
    return {
        "per_decade_of_T": float(coef[1]),
        "stderr": float(math.sqrt(max(cov[1, 1], 0.0))),
        "per_unit_ln_loss": float(coef[2]),
    }


def _loss_sensitivity(runs: list[dict], target: float, other: float | None) -> float | None:
    """Median over (η, B, seed) of the along-trajectory d ln|F + δI| / d ln L between the stops at ``target``
    and at ``other`` (the adjacent target): how much ln|F + δI| moves per unit ln L along one run."""
    import statistics

    if other is None:
        return None
    at = {
        (r["lr"], r["batch"], r["seed"]): r
        for r in runs
        if r["target_loss"] == target and r["reached"]
    }
    ot = {
        (r["lr"], r["batch"], r["seed"]): r
        for r in runs
        if r["target_loss"] == other and r["reached"]
    }
    d = []
    for k, r in at.items():
        q = ot.get(k)
        if q is not None and q["loss_stop"] != r["loss_stop"]:
            d.append(
                (q["logdet"] - r["logdet"]) / (math.log(q["loss_stop"]) - math.log(r["loss_stop"]))
            )
    return float(statistics.median(d)) if d else None


def _loss_adjusted(rs: list[dict], sens: float | None) -> dict[str, Any]:
    """The residual loss spread's share: ln|F + δI| − sens·ln L_stop regressed on log10 T (slope per decade,
    standard error), and sens × (mean ln L_stop at the highest T − at the lowest T) against the observed
    difference of the mean ln|F + δI| there."""
    import numpy as np

    out: dict[str, Any] = {
        "sensitivity": sens,
        "per_decade_of_T": None,
        "stderr": None,
        "explained_by_loss": None,
        "observed": None,
    }
    Ts = sorted({round(r["temperature"], 12) for r in rs})
    if sens is None or len(Ts) < 3:
        return out
    x = np.array([math.log10(r["temperature"]) for r in rs])
    y = np.array([r["logdet"] - sens * math.log(r["loss_stop"]) for r in rs])
    A = np.column_stack([np.ones(len(x)), x])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    cov = float(resid @ resid) / (len(y) - 2) * np.linalg.inv(A.T @ A)
    out["per_decade_of_T"], out["stderr"] = float(coef[1]), float(math.sqrt(max(cov[1, 1], 0.0)))

    def mean_at(t, key):
        g = [r for r in rs if round(r["temperature"], 12) == t]
        return sum(key(r) for r in g) / len(g)

    lo, hi = Ts[0], Ts[-1]
    out["explained_by_loss"] = sens * (
        mean_at(hi, lambda r: math.log(r["loss_stop"]))
        - mean_at(lo, lambda r: math.log(r["loss_stop"]))
    )
    out["observed"] = mean_at(hi, lambda r: r["logdet"]) - mean_at(lo, lambda r: r["logdet"])
    return out


def _paired(runs: list[dict], n_boot: int, seed: int) -> dict[str, Any]:
    """Within-seed Spearman ρ(T, ln|F + δI|) (same init and batch-order seed), their mean and a percentile
    bootstrap CI over seeds."""
    import numpy as np

    from ._invariance_measures import _rho

    by: dict[int, list[dict]] = {}
    for r in runs:
        by.setdefault(r["seed"], []).append(r)
    per = []
    for sd in sorted(by):
        g = by[sd]
        rho = (
            _rho([r["temperature"] for r in g], [r["logdet"] for r in g])
            if len(g) >= 3
            else math.nan
        )
        per.append({"seed": sd, "rho": None if math.isnan(rho) else rho, "n": len(g)})
    vals = np.array([p["rho"] for p in per if p["rho"] is not None], float)
    out: dict[str, Any] = {
        "per_seed": per,
        "n_seeds": len(vals),
        "n_negative": int((vals < 0).sum()),
        "mean_rho": None,
        "ci_low": None,
        "ci_high": None,
    }
    if len(vals):
        out["mean_rho"] = float(vals.mean())
        if len(vals) >= 2:
            rng = np.random.default_rng(seed)
            boots = [
                float(vals[rng.integers(0, len(vals), len(vals))].mean()) for _ in range(n_boot)
            ]
            out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(boots, [0.025, 0.975]))
    return out


def _linear_scaling(runs: list[dict]) -> list[dict[str, Any]]:
    """For every T reached by two or more (η, B): mean |Δ ln|F + δI|| between them at the same seed."""
    by: dict[float, dict[tuple, dict[int, float]]] = {}
    for r in runs:
        by.setdefault(round(r["temperature"], 12), {}).setdefault((r["lr"], r["batch"]), {})[
            r["seed"]
        ] = r["logdet"]
    out = []
    for t, cfgs in sorted(by.items()):
        if len(cfgs) < 2:
            continue
        keys = sorted(cfgs)
        d = [
            abs(cfgs[a][sd] - cfgs[b][sd])
            for i, a in enumerate(keys)
            for b in keys[i + 1 :]
            for sd in cfgs[a]
            if sd in cfgs[b]
        ]
        out.append(
            {
                "T": t,
                "configs": [list(k) for k in keys],
                "mean_abs_dlogdet": sum(d) / len(d) if d else None,
                "n_pairs": len(d),
            }
        )
    return out


def _per_temperature(runs: list[dict]) -> list[dict[str, Any]]:
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
                **{
                    k: m(k)
                    for k in ("loss_stop", "logdet", "trace", "sgd_time", "steps", "free_energy")
                },
            }
        )
    return rows


def analyse(runs: list[dict], s: dict[str, Any]) -> dict[str, Any]:
    """Per target loss L*: Spearman ρ(T, ln|F + δI|), ρ(T, tr F), ρ(T, L_stop) and ρ(T, η·steps) with
    bootstrap CIs over the runs that reached it, the fit ln|F + δI| ~ log10 T + ln L_stop, the within-seed
    (paired) ρ, the equal-η/B pairs and the per-T means."""
    nb = int(s["n_boot"])
    targets = sorted({r["target_loss"] for r in runs}, reverse=True)
    by_target = []
    for k, target in enumerate(targets):
        all_t = [r for r in runs if r["target_loss"] == target]
        rs = [r for r in all_t if r["reached"]]
        T = [r["temperature"] for r in rs]
        e: dict[str, Any] = {
            "target_loss": target,
            "n_runs": len(all_t),
            "n_reached": len(rs),
            "not_reached": [
                {key: r[key] for key in ("lr", "batch", "seed", "loss_stop", "sgd_time")}
                for r in all_t
                if not r["reached"]
            ],
            "n_temperatures": len({round(t, 12) for t in T}),
            "rho_T_logdet": spearman_ci(T, [r["logdet"] for r in rs], n_boot=nb, seed=10 * k),
            "rho_T_trace": spearman_ci(T, [r["trace"] for r in rs], n_boot=nb, seed=10 * k + 1),
            "rho_T_loss_stop": spearman_ci(
                T, [r["loss_stop"] for r in rs], n_boot=nb, seed=10 * k + 2
            ),
            "rho_T_sgd_time": spearman_ci(
                T, [r["sgd_time"] for r in rs], n_boot=nb, seed=10 * k + 3
            ),
            "loss_stop_range": [min(r["loss_stop"] for r in rs), max(r["loss_stop"] for r in rs)]
            if rs
            else None,
            "slope": _slope_at_fixed_loss(rs),
            "paired": _paired(rs, nb, seed=10 * k + 4),
            "linear_scaling": _linear_scaling(rs),
            "per_temperature": _per_temperature(rs),
        }
        other = targets[k + 1] if k + 1 < len(targets) else (targets[k - 1] if k else None)
        e["loss_adjusted"] = _loss_adjusted(rs, _loss_sensitivity(runs, target, other))
        rl = e["rho_T_logdet"]
        e["verdict"] = (
            verdict(rl["ci_low"], rl["ci_high"]) if e["n_temperatures"] >= 3 else "NOT SHOWN"
        )
        p = e["paired"]
        e["paired_verdict"] = (
            verdict(p["ci_low"], p["ci_high"]) if e["n_temperatures"] >= 3 else "NOT SHOWN"
        )
        by_target.append(e)
    return {"by_target": by_target, "main_target": min(targets) if targets else None}
