"""Random labels: the information in the weights rises with the fraction of labels that are random.

A network can fit random labels (Zhang et al. 2017), but only by storing them: nothing in the images
predicts them. Achille, Paolini & Soatto (2019) measure what a network stores as the information in its
weights, IW = KL(Q*‖P) at the optimum of C_β = E_Q[L_D] + β·KL(Q‖P) (Def. 2.1; reference §1.2), and
predict that IW grows with the fraction of random labels the network had to memorise.

The experiment, for each fraction f (default 0, 0.25, 0.5, 1):

1. the same ``n_train`` training images (a seeded subset of ``dataset``), with a fraction f of their
   labels replaced by uniformly random ones (:func:`weightinfo.data.corrupt_labels`, seeded with
   ``seed``; the corrupted positions of a smaller fraction are among those of a larger one);
2. an MLP (``widths``) from the **same initial weights** w0 (built once after ``torch.manual_seed(seed)``),
   trained with Adam on the noisy labels, in the same data order, until it fits them: the first epoch
   after which the mean training loss over the whole (noisy) training set is ≤ ``fit_loss``
   (at most ``max_epochs``). Every network thus ends at the same training loss;
3. IW of the trained weights w* on the data they were fit to (the images with the noisy labels), with
   both methods of :func:`weightinfo.information` at the same β (per sample, mean loss) and λ:
   ``"fisher"`` (closed form of the quadratic model with the exact diagonal Fisher) and ``"variational"``
   (diagonal Q fit by minimising C_β). The prior P = N(w0, λ² I) is centred on the initial weights and has
   one scale λ for all layers, so it does not depend on the data: IW then counts how far training moved
   the weights, ‖w* − w0‖²/(2λ²) (the *mean term*, identical for both methods), plus how precisely they
   must be stored (the *curvature term*, IW − mean term; ½ Σ_i g(λ² F_ii/β) for the Fisher method).

Outputs (``out_dir``): ``random_labels.json`` (settings, per-fraction rows, per-layer rows, orderings),
``random_labels.png`` (IW against the fraction, and the per-layer split into mean and curvature terms)
and ``random_labels.md`` (tables, settings, command, machine, and a reading generated from the numbers).

Defaults: 3,000 Fashion-MNIST images, MLP 256-256, β = 1e-7 per sample, λ = 0.05 (why: :data:`CHOICE_NOTE`),
plus the same measurements at two further (β, λ) pairs (``sensitivity``). Result of the documented run
(``docs/results/random_labels.md``): IW rises strictly with the fraction for both methods (×2.3 Fisher,
×2.1 variational from 0 to 100 %), most of it in the mean term; the curvature term rises up to 50 % and
then stalls or falls.

Run it with ``python experiments/random_labels.py`` or ``weightinfo reproduce random-labels``.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CHOICE_NOTE",
    "DEFAULTS",
    "METHODS",
    "QUICK",
    "main",
    "parse_pairs",
    "run",
    "write_outputs",
]

METHODS = ("fisher", "variational")

#: Settings of the documented run (``docs/results/random_labels.*``).
DEFAULTS: dict[str, Any] = {
    "dataset": "fashion-mnist",
    "n_train": 3000,
    "fractions": (0.0, 0.25, 0.5, 1.0),
    "widths": (256, 256),
    "max_epochs": 400,
    "lr": 1e-3,
    "batch_size": 128,
    "fit_loss": 0.01,
    "beta": 1e-7,
    "prior_scale": 0.05,
    "seed": 0,
    "data_seed": 0,
    "methods": METHODS,
    "mc_samples": 8,
    "variational_epochs": 50,
    "variational_tol": 0.0,
    "variational_lr": 5e-2,
    "sensitivity": ((3e-7, 0.05), (1e-7, 0.07)),
}

#: Why the default β and λ (shown in the report when the run uses the default data, model, β and λ).
CHOICE_NOTE = (
    "**Why β = 1e-7 and λ = 0.05.** λ is of the order of the initial weights of the first layer "
    "(uniform in ±1/√784 ≈ ±0.036) and of how far training moves a weight. β and λ were picked in "
    "exploratory runs on these four networks (β from 1e-8 to 1e-6, λ from 0.03 to 0.2; not part of "
    "this command) as a setting where (i) the noise of the Fisher-method Q* leaves the networks fitting "
    "(E_Q[L_D] ≤ 0.04 against L_D(w*) ≈ 0.01: the quadratic model is trustworthy; at β = 1e-6, λ = 0.1, "
    "the `weightinfo measure` default chosen on digits, E_Q[L_D] reaches 1.4 on the 100 % network) and "
    "(ii) the curvature term is a sizeable part of IW (20–26 % Fisher, 26–36 % variational), not the "
    "mean term alone (β = 1e-7, λ = 0.03: the mean term is 94 % of IW). Smaller β or larger λ make IW "
    "mostly the curvature term that every weight pays, ≈ ½ ln(λ² F_ii/β), and there the 100 % "
    "network can store fewer nats than the 50 % one (Fisher, β = 1e-8: 377k → 348k nats at λ = 0.1, "
    "405k → 358k at λ = 0.2)."
)
_CHOICE_KEYS = ("dataset", "n_train", "widths", "beta", "prior_scale")

#: ``--quick``: a reduced run on the bundled digits (seconds, no data files needed).
QUICK: dict[str, Any] = {
    "dataset": "digits",
    "n_train": 500,
    "fractions": (0.0, 0.5, 1.0),
    "widths": (128,),
    "max_epochs": 1000,
    "lr": 1e-2,
    "batch_size": 128,
    "fit_loss": 0.01,
    "beta": 1e-6,
    "prior_scale": 0.1,
    "mc_samples": 4,
    "variational_epochs": 5,
    "sensitivity": (),
}


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def _reporter(progress: bool | Callable[[str], None] | None) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda msg: print(msg, file=sys.stderr, flush=True)
    return lambda msg: None


def strictly_increasing(values: Sequence[float]) -> bool:
    """Whether every value is larger than the one before (NaN never is)."""
    return all(b > a for a, b in zip(values, values[1:]))


class _FitStop:
    """Stops training after the first epoch whose mean training loss (eval mode, whole set) is ≤ target."""

    def __init__(self, x, y, target: float, batch_size: int = 1024):
        self.x, self.y, self.target, self.batch_size = x, y, float(target), batch_size
        self.reached = False
        self.loss = math.nan

    def on_epoch_end(self, state) -> bool:
        from ..train import evaluate

        ev = evaluate(state.model, [(self.x, self.y)], "cross_entropy")  # restores train mode
        self.loss = float(ev["loss"])
        self.reached = self.loss <= self.target
        return self.reached


def _mean_terms(model, init_state: dict, prior_scale: float) -> dict[str, float]:
    """‖w* − w0‖²/(2λ²) per layer (nats): the part of IW that only depends on how far the weights moved."""
    from ..curvature.result import layer_of

    out: dict[str, float] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        d = (p.detach().double() - init_state[name].double()).pow(2).sum().item()
        layer = layer_of(name)
        out[layer] = out.get(layer, 0.0) + d / (2 * prior_scale**2)
    return out


def _accuracy(model, x, y) -> float:
    import torch

    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def _machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
    }


# --------------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------------


def run(
    dataset: str = DEFAULTS["dataset"],
    n_train: int | None = DEFAULTS["n_train"],
    fractions: Sequence[float] = DEFAULTS["fractions"],
    widths: Sequence[int] = DEFAULTS["widths"],
    epochs: int = DEFAULTS["max_epochs"],
    beta: float = DEFAULTS["beta"],
    prior_scale: float = DEFAULTS["prior_scale"],
    seed: int = DEFAULTS["seed"],
    methods: Sequence[str] = DEFAULTS["methods"],
    out_dir: str | os.PathLike | None = None,
    progress: bool | Callable[[str], None] | None = True,
    *,
    lr: float = DEFAULTS["lr"],
    batch_size: int = DEFAULTS["batch_size"],
    fit_loss: float = DEFAULTS["fit_loss"],
    data_seed: int = DEFAULTS["data_seed"],
    mc_samples: int = DEFAULTS["mc_samples"],
    variational_epochs: int = DEFAULTS["variational_epochs"],
    variational_tol: float = DEFAULTS["variational_tol"],
    variational_lr: float = DEFAULTS["variational_lr"],
    sensitivity: Sequence[tuple[float, float]] = DEFAULTS["sensitivity"],
    data_root: str | os.PathLike | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Fit an MLP to each fraction of random labels and measure the information in its weights.

    Parameters
    ----------
    dataset, n_train, data_seed : ``n_train`` training images of ``dataset`` (a random subset seeded with
        ``data_seed``; None: all), loaded with :func:`weightinfo.load_dataset` (``data_root`` or
        ``$WEIGHTINFO_DATA`` for file-backed sets).
    fractions : fractions of training labels made uniformly random (seeded with ``seed``).
    widths : hidden widths of the MLP. epochs : most training epochs (training stops once the mean
        training loss is ≤ ``fit_loss``). lr, batch_size : Adam's learning rate and batch size.
    beta, prior_scale : β per sample (mean loss) and λ of P = N(w0, λ² I), w0 the initial weights; the
        same for every fraction and method.
    seed : initial weights, data order, label corruption and the estimators' noise.
    methods : any of ``"fisher"``, ``"variational"``.
    mc_samples : weight draws w ∼ Q* for E_Q[L_D]. variational_epochs, variational_tol, variational_lr :
        the variational fit (most epochs, tolerance on C_β, Adam learning rate).
    sensitivity : further (β, λ) pairs at which both methods measure the same trained networks (a check
        that the ordering does not hinge on the chosen β and λ).
    out_dir : if given, write ``random_labels.json``, ``.png`` and ``.md`` there.
    progress : True (status lines on stderr), False/None, or a callable taking one line.
    command : the command line recorded in the report (default: this process's ``sys.argv``).

    Returns
    -------
    dict with ``settings``, ``rows`` (one per fraction: accuracies, IW per method, mean term, curvature
    terms, E_Q[L_D], times, and the ``sensitivity`` cells), ``per_layer`` (per fraction and layer),
    ``ordering`` (per method: whether IW, the curvature term, and the mean term rise strictly with the
    fraction), ``sensitivity_ordering``, ``label_nats``, ``command``, ``machine``, ``time_s`` and, with
    ``out_dir``, ``files``.
    """
    import torch

    from ..data import corrupt_labels, load_dataset
    from ..information import information
    from ..models import build_model, count_parameters
    from ..train import train

    say = _reporter(progress)
    fractions = [float(f) for f in fractions]
    if not fractions or any(not 0.0 <= f <= 1.0 for f in fractions):
        raise ValueError(f"fractions must lie in [0, 1], got {fractions}")
    if sorted(fractions) != fractions or len(set(fractions)) != len(fractions):
        raise ValueError(f"fractions must be distinct and increasing, got {fractions}")
    methods = tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    if not methods or bad:
        raise ValueError(f"methods must be among {', '.join(METHODS)}, got {list(methods)}")
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    if not (math.isfinite(prior_scale) and prior_scale > 0):
        raise ValueError(f"prior_scale must be a finite number > 0, got {prior_scale!r}")
    widths = tuple(int(w) for w in widths)
    sensitivity = [(float(b), float(lam)) for b, lam in sensitivity]
    if any(not (math.isfinite(v) and v > 0) for pair in sensitivity for v in pair):
        raise ValueError(f"sensitivity must hold (beta, lambda) pairs > 0, got {sensitivity}")

    t_start = time.perf_counter()
    clean = load_dataset(dataset, seed=data_seed, n_samples=n_train, root=data_root)
    n = len(clean)
    say(f"{clean.describe()}; MLP {widths}; β = {beta:g} per sample, λ = {prior_scale:g}")
    torch.manual_seed(seed)
    net0 = build_model("mlp", clean.input_shape, clean.n_classes, widths=widths)
    init_state = copy.deepcopy(net0.state_dict())
    k = count_parameters(net0)

    rows: list[dict[str, Any]] = []
    per_layer: list[dict[str, Any]] = []
    for f in fractions:
        t0 = time.perf_counter()
        ds = corrupt_labels(clean, f, seed=seed)
        noise = ds.info["label_noise"]
        x, y = ds.x_train, ds.y_train
        net = copy.deepcopy(net0)
        net.load_state_dict(init_state)
        stop = _FitStop(x, y, fit_loss)
        tr = train(
            net,
            ds.train_loader(batch_size=batch_size, shuffle=True, seed=seed),
            epochs=epochs,
            lr=lr,
            optimizer="adam",
            seed=seed,
            callbacks=[stop],
            progress=False,
        )
        net.eval()
        t_train = time.perf_counter() - t0

        def measure(method: str, b: float, lam: float, net=net, x=x, y=y):
            kw: dict[str, Any] = {}
            if method == "variational":
                kw = {
                    "max_epochs": variational_epochs,
                    "tol": variational_tol,
                    "lr": variational_lr,
                }
            tm = time.perf_counter()
            res = information(
                net,
                (x, y),
                beta=b,
                prior_scale=lam,
                prior_mean="init",
                init_state=init_state,
                method=method,
                structure="diag",
                mc_samples=mc_samples,
                seed=seed,
                progress=False,
                **kw,
            )
            return res, time.perf_counter() - tm

        row: dict[str, Any] = {
            "fraction": f,
            "n_corrupted": noise["n_corrupted"],
            "n_changed": noise["n_changed"],
            "epochs": tr.epochs_run,
            "fit_reached": stop.reached,
            "train_loss": stop.loss,
            "train_acc": _accuracy(net, x, y),
            "train_acc_clean_labels": _accuracy(net, x, clean.y_train),
            "test_acc": _accuracy(net, ds.x_test, ds.y_test),
            "train_time_s": t_train,
        }
        mean_layers = _mean_terms(net, init_state, prior_scale)
        row["mean_term"] = sum(mean_layers.values())
        say(
            f"fraction {f:g}: {noise['n_changed']} labels changed; fit in {tr.epochs_run} epochs "
            f"({t_train:.0f} s): train acc {100 * row['train_acc']:.1f}%, "
            f"test acc {100 * row['test_acc']:.1f}%, L_D {stop.loss:.4f}"
        )
        if not stop.reached or row["train_acc"] < 0.99:
            say(
                f"  warning: fraction {f:g} not fit (loss {stop.loss:.4f}, acc {row['train_acc']:.3f})"
            )
        layers = {layer: {"layer": layer, "mean_term": v} for layer, v in mean_layers.items()}
        for method in methods:
            res, dt = measure(method, beta, prior_scale)
            row[f"iw_{method}"] = res.nats
            row[f"curvature_term_{method}"] = res.nats - row["mean_term"]
            row[f"expected_loss_{method}"] = res.expected_loss
            row[f"expected_loss_stderr_{method}"] = res.expected_loss_stderr
            row[f"time_{method}_s"] = dt
            if method == "variational":
                row["variational_epochs_run"] = res.extra.get("epochs")
                row["variational_converged"] = res.extra.get("converged")
            for r in res.per_layer.rows:
                entry = layers.setdefault(r["layer"], {"layer": r["layer"], "mean_term": 0.0})
                entry["n_params"] = r["n_params"]
                entry[f"iw_{method}"] = r["nats"]
            el = res.expected_loss
            say(
                f"  {method}: IW = {res.nats:,.0f} nats (mean term {row['mean_term']:,.0f}, "
                f"curvature term {res.nats - row['mean_term']:,.0f}); E_Q[L_D] = {el:.4f} ({dt:.0f} s)"
            )
        row["sensitivity"] = []
        for b, lam in sensitivity:
            mt = sum(_mean_terms(net, init_state, lam).values())
            cell: dict[str, Any] = {"beta": b, "prior_scale": lam, "mean_term": mt}
            for method in methods:
                res, _ = measure(method, b, lam)
                cell[f"iw_{method}"] = res.nats
                cell[f"curvature_term_{method}"] = res.nats - mt
                cell[f"expected_loss_{method}"] = res.expected_loss
            row["sensitivity"].append(cell)
            say(
                f"  β = {b:g}, λ = {lam:g}: "
                + ", ".join(f"IW {m} {cell[f'iw_{m}']:,.0f}" for m in methods)
                + f" (mean term {mt:,.0f})"
            )
        row["time_s"] = time.perf_counter() - t0
        rows.append(row)
        per_layer.append({"fraction": f, "layers": list(layers.values())})

    ordering: dict[str, dict[str, bool]] = {
        "mean_term": {"strictly_increasing": strictly_increasing([r["mean_term"] for r in rows])}
    }
    for method in methods:
        ordering[method] = {
            "iw_strictly_increasing": strictly_increasing([r[f"iw_{method}"] for r in rows]),
            "curvature_term_strictly_increasing": strictly_increasing(
                [r[f"curvature_term_{method}"] for r in rows]
            ),
        }
    sens_ordering = []
    for i, (b, lam) in enumerate(sensitivity):
        cells = [r["sensitivity"][i] for r in rows]
        entry: dict[str, Any] = {"beta": b, "prior_scale": lam}
        for method in methods:
            entry[f"iw_{method}_strictly_increasing"] = strictly_increasing(
                [c[f"iw_{method}"] for c in cells]
            )
            entry[f"curvature_term_{method}_strictly_increasing"] = strictly_increasing(
                [c[f"curvature_term_{method}"] for c in cells]
            )
        sens_ordering.append(entry)
    if command is None:
        command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    out: dict[str, Any] = {
        "experiment": "random_labels",
        "description": (
            "Information in the weights (nats) of an MLP fit to a fraction of random training labels, "
            "same initialisation, same beta and lambda for every fraction and method"
        ),
        "settings": {
            "dataset": dataset,
            "dataset_description": clean.describe(),
            "n_train": n,
            "n_classes": clean.n_classes,
            "data_seed": data_seed,
            "fractions": fractions,
            "model": {"name": "mlp", "widths": list(widths), "n_params": k},
            "training": {
                "optimizer": "adam",
                "lr": lr,
                "batch_size": batch_size,
                "max_epochs": epochs,
                "fit_loss": fit_loss,
                "stop": "first epoch with mean training loss (noisy labels, whole set) <= fit_loss",
                "seed": seed,
                "same_initialisation": True,
            },
            "information": {
                "beta": beta,
                "beta_convention": "per sample, mean loss (beta_sum = N*beta)",
                "beta_sum": beta * n,
                "prior_scale": prior_scale,
                "prior_mean": "init (the common initial weights w0)",
                "structure": "diag",
                "fisher": "exact diagonal Fisher (labels from the model), corrected convention",
                "variational": {
                    "max_epochs": variational_epochs,
                    "tol": variational_tol,
                    "lr": variational_lr,
                    "init_var": "fisher",
                },
                "mc_samples": mc_samples,
                "sensitivity": [list(p) for p in sensitivity],
                "data": "the training images with the (noisy) labels each network was fit to",
                "units": "nats",
            },
            "methods": list(methods),
        },
        "rows": rows,
        "per_layer": per_layer,
        "ordering": ordering,
        "sensitivity_ordering": sens_ordering,
        "label_nats": {
            "note": "n_corrupted * ln(n_classes): the entropy of the random labels drawn (given their positions)",
            "values": [r["n_corrupted"] * math.log(clean.n_classes) for r in rows],
        },
        "command": command,
        "machine": _machine(),
        "time_s": time.perf_counter() - t_start,
    }
    if out_dir is not None:
        out["files"] = [str(p) for p in write_outputs(out, out_dir)]
        for p in out["files"]:
            say(f"wrote {p}")
    return out


# --------------------------------------------------------------------------------------------
# Report: JSON, plot, Markdown
# --------------------------------------------------------------------------------------------


def write_outputs(result: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """``random_labels.json``, ``random_labels.png`` and ``random_labels.md`` in ``out_dir``."""
    from ..report import write_json_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {k: v for k, v in result.items() if k != "files"}
    paths = [write_json_atomic(out / "random_labels.json", payload)]
    paths.append(plot(result, out / "random_labels.png"))
    md = out / "random_labels.md"
    tmp = md.with_name(f".{md.name}.tmp")
    tmp.write_text(markdown(result), encoding="utf-8")
    os.replace(tmp, md)
    paths.append(md)
    return paths


_METHOD_STYLE = {
    "fisher": ("C0", "o", "Fisher (closed form)"),
    "variational": ("C3", "s", "variational"),
}


def plot(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """IW against the fraction of random labels (both methods, mean term dashed), and per method the
    nats per layer and fraction, split into mean term (hatched) and curvature term."""
    from matplotlib import colormaps

    from ..report.plots import _figure, _save

    s = result["settings"]
    rows = result["rows"]
    methods = s["methods"]
    fr = [r["fraction"] for r in rows]
    fig = _figure(5.0 + 5.0 * len(methods), 4.6)
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
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(fig, path)


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


def _is_default(settings: dict[str, Any]) -> bool:
    used = {
        "dataset": settings["dataset"],
        "n_train": settings["n_train"],
        "widths": tuple(settings["model"]["widths"]),
        "beta": settings["information"]["beta"],
        "prior_scale": settings["information"]["prior_scale"],
    }
    return all(
        used[k] == (tuple(DEFAULTS[k]) if k == "widths" else DEFAULTS[k]) for k in _CHOICE_KEYS
    )


def markdown(result: dict[str, Any]) -> str:
    """The report: settings, table of results, per-layer table, reading, command and machine."""
    s, rows = result["settings"], result["rows"]
    methods = s["methods"]
    info, trn = s["information"], s["training"]
    v = info["variational"]
    epochs_text = (
        f"{v['max_epochs']} epochs"
        if not v["tol"]
        else f"≤ {v['max_epochs']} epochs, stop when |ΔC_β| < {v['tol']:g}"
    )
    lines = [
        "# Information in the weights against the fraction of random labels",
        "",
        "Generated by `weightinfo.experiments.random_labels` (`experiments/random_labels.py`, "
        "`weightinfo reproduce random-labels`); rerunning the command below overwrites it.",
        "",
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
        "‖w*−w0‖²/(2λ²) is the same for both methods; curvature term = IW − mean term.",
        "",
        *([CHOICE_NOTE, ""] if _is_default(s) else []),
        "## Results",
        "",
    ]
    head = ["random labels", "labels changed", "epochs", "train acc (noisy)", "test acc", "L_D(w*)"]
    head += [f"IW {m}" for m in methods] + ["mean term"]
    head += [f"curv. term {m}" for m in methods] + [f"E_Q[L_D] {m}" for m in methods]
    head += ["time (s)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
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
    lines += ["", "IW, mean and curvature terms in nats. ", ""]
    ordering = result["ordering"]
    verdicts = [
        f"{m}: IW {'rises strictly' if ordering[m]['iw_strictly_increasing'] else 'does NOT rise strictly'}"
        f" with the fraction (curvature term: "
        f"{'rises strictly' if ordering[m]['curvature_term_strictly_increasing'] else 'not monotone'})"
        for m in methods
    ]
    lines += ["**Ordering.** " + "; ".join(verdicts) + ".", ""]
    lines += ["![IW against the fraction of random labels](random_labels.png)", ""]
    if result.get("sensitivity_ordering"):
        lines += _sensitivity_lines(result)
    lines += ["## Per layer", ""]
    layers = [e["layer"] for e in result["per_layer"][0]["layers"]]
    n_params = {e["layer"]: e.get("n_params", 0) for e in result["per_layer"][0]["layers"]}
    head = ["random labels"] + [
        f"{lay} ({n_params[lay]:,}) {m}" for lay in layers for m in (*methods, "mean")
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in result["per_layer"]:
        by = {e["layer"]: e for e in entry["layers"]}
        cells = [f"{100 * entry['fraction']:g}%"]
        for lay in layers:
            cells += [_n(by[lay].get(f"iw_{m}")) for m in methods] + [_n(by[lay]["mean_term"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Nats per layer (weights and biases); `mean` is the layer's mean term.", ""]
    lines += ["## Reading", ""] + _reading(result) + [""]
    m = result["machine"]
    lines += [
        "## Reproduce",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"Total wall time {result['time_s'] / 60:.1f} min on {m['platform']} ({m['cpu_count']} cores, "
        f"torch {m['torch']} with {m['torch_threads']} threads, OMP_NUM_THREADS={m['omp_num_threads']}), "
        "a machine shared with other jobs"
        + (
            f" (load average {', '.join(f'{v:.1f}' for v in m['load_average_at_end'])} over the last 1, "
            "5, 15 min at the end of the run)"
            if m.get("load_average_at_end")
            else ""
        )
        + ": times are indicative only. Per-fraction times in the table include training and every "
        "measurement (main and other β, λ; `--sensitivity none` skips the latter). "
        "Numbers: `random_labels.json`.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.replace(" ", ",").split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.replace(" ", ",").split(",") if t.strip()]


def parse_pairs(text: str) -> list[tuple[float, float]]:
    """``"3e-7:0.05,1e-7:0.07"`` → ``[(3e-7, 0.05), (1e-7, 0.07)]``; ``"none"`` → ``[]``."""
    if text.strip().lower() in ("", "none"):
        return []
    out = []
    for item in _strings(text):
        b, _, lam = item.partition(":")
        out.append((float(b), float(lam)))
    return out


def _strings(text: str) -> list[str]:
    return [t.strip() for t in text.replace(" ", ",").split(",") if t.strip()]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python experiments/random_labels.py [options]``; ``--help`` lists them."""
    d = DEFAULTS
    p = argparse.ArgumentParser(
        prog="random_labels.py",
        description="Information in the weights of an MLP fit to 0-100 percent random labels, both "
        "methods at the same beta and lambda (writes random_labels.json/.png/.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    csv = ",".join
    p.add_argument("--dataset", default=d["dataset"], help="dataset name")
    p.add_argument(
        "--n-train", type=int, default=d["n_train"], help="training images, seeded subset (0: all)"
    )
    p.add_argument(
        "--fractions",
        type=_floats,
        default=csv(f"{f:g}" for f in d["fractions"]),
        help="fractions of random labels, comma-separated",
    )
    p.add_argument(
        "--widths",
        type=_ints,
        default=csv(str(w) for w in d["widths"]),
        help="MLP hidden widths, comma-separated",
    )
    p.add_argument(
        "--epochs", type=int, default=d["max_epochs"], help="most training epochs (Adam)"
    )
    p.add_argument("--lr", type=float, default=d["lr"], help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=d["batch_size"], help="training batch size")
    p.add_argument(
        "--fit-loss",
        type=float,
        default=d["fit_loss"],
        help="stop training once the mean training loss is at most this",
    )
    p.add_argument("--beta", type=float, default=d["beta"], help="beta per sample (mean loss)")
    p.add_argument(
        "--prior-scale",
        type=float,
        default=d["prior_scale"],
        help="lambda of P = N(w0, lambda^2 I)",
    )
    p.add_argument(
        "--seed", type=int, default=d["seed"], help="initial weights, data order, label noise"
    )
    p.add_argument("--data-seed", type=int, default=d["data_seed"], help="training subset")
    p.add_argument(
        "--methods",
        type=_strings,
        default=csv(d["methods"]),
        help="fisher and/or variational, comma-separated",
    )
    p.add_argument(
        "--mc-samples", type=int, default=d["mc_samples"], help="weight draws for E_Q[L_D]"
    )
    p.add_argument(
        "--variational-epochs",
        type=int,
        default=d["variational_epochs"],
        help="epochs of the variational fit",
    )
    p.add_argument(
        "--variational-tol",
        type=float,
        default=d["variational_tol"],
        help="stop the variational fit when C_beta changes less (0: run every epoch)",
    )
    p.add_argument(
        "--sensitivity",
        type=parse_pairs,
        default=csv(f"{b:g}:{lam:g}" for b, lam in d["sensitivity"]) or "none",
        help="further BETA:LAMBDA pairs measured on the same networks, comma-separated, or 'none'",
    )
    p.add_argument("--out", default="docs/results", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no status lines on stderr")
    args = p.parse_args(argv)
    env = " ".join(
        f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "WEIGHTINFO_DATA") if os.environ.get(k)
    )
    cmd = " ".join(
        shlex.quote(a) for a in ["python", sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    )
    return run(
        dataset=args.dataset,
        n_train=args.n_train or None,
        fractions=args.fractions,
        widths=args.widths,
        epochs=args.epochs,
        beta=args.beta,
        prior_scale=args.prior_scale,
        seed=args.seed,
        methods=args.methods,
        out_dir=args.out,
        progress=not args.quiet,
        lr=args.lr,
        batch_size=args.batch_size,
        fit_loss=args.fit_loss,
        data_seed=args.data_seed,
        mc_samples=args.mc_samples,
        variational_epochs=args.variational_epochs,
        variational_tol=args.variational_tol,
        sensitivity=args.sensitivity,
        command=f"{env} {cmd}".strip(),
    )


if __name__ == "__main__":
    main()
