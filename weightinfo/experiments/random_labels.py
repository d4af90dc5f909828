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

from .._base.provenance import made_by
from ._random_labels_report import markdown as markdown
from ._random_labels_report import plot as plot
from ._random_labels_report import strictly_increasing, write_outputs

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
    "exploratory runs on the four networks of the first run of this command (2 torch threads, commit "
    "e7072bb; the thread count changes the trained networks: see docs/results/README.md; β from 1e-8 to "
    "1e-6, λ from 0.03 to 0.2; not part of this command) as a setting where (i) the noise of the "
    "Fisher-method Q* leaves the networks fitting (there E_Q[L_D] ≤ 0.04 against L_D(w*) ≈ 0.01: the "
    "quadratic model is trustworthy; at β = 1e-6, λ = 0.1, the `weightinfo measure` default chosen on "
    "digits, E_Q[L_D] reaches 1.4 on the 100 % network) and (ii) the curvature term is a sizeable part "
    "of IW (there 20–26 % Fisher, 26–36 % variational), not the mean term alone (β = 1e-7, λ = 0.03: the "
    "mean term is 94 % of IW). Smaller β or larger λ make IW "
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


class _FitStop:
    """Stops training after the first epoch whose mean training loss (eval mode, whole set) is ≤ target."""

    def __init__(self, x, y, target: float, batch_size: int = 1024):
        self.x, self.y, self.target, self.batch_size = x, y, float(target), batch_size
        self.reached = False
        self.loss = math.nan

    def on_epoch_end(self, state) -> bool:
        from ..training import evaluate

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
    quick: bool = False,
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
    quick : whether these are ``--quick`` smoke-test settings (recorded in the report's ``made_by``).

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
    from ..iw import information
    from ..models import build_model, count_parameters
    from ..training import train

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
    made = made_by(quick=quick)  # the code at the start (the checkout may move during a long run)
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
                    "lr_decay": 1.0,  # the constant rate of the documented runs
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
        "quick": bool(quick),
        "made_by": made,
        "machine": _machine(),
        "time_s": time.perf_counter() - t_start,
    }
    if out_dir is not None:
        out["files"] = [str(p) for p in write_outputs(out, out_dir)]
        for p in out["files"]:
            say(f"wrote {p}")
    return out


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
