"""Random labels: the information in the weights rises with the fraction of labels that are random.

A network can fit random labels (Zhang et al. 2017), but only by storing them: nothing in the images
predicts them. Achille, Paolini & Soatto (2019) measure what a network stores as the information in its
weights, IW = KL(Q*‖P) at the optimum of C_β = E_Q[L_D] + β·KL(Q‖P) (Def. 2.1), and
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

import copy
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._base.machine import machine_info
from .._base.provenance import made_by
from ._random_labels_defaults import (
    CHOICE_NOTE,
    DEFAULTS,
    METHODS,
    QUICK,
    check_settings,
    parse_pairs,
)
from ._random_labels_report import markdown as markdown
from ._random_labels_report import plot as plot
from ._random_labels_report import strictly_increasing, write_outputs
from ._report_files import argv_command

__all__ = [
    "CHOICE_NOTE",
    "DEFAULTS",
    "METHODS",
    "QUICK",
    "parse_pairs",
    "run",
    "write_outputs",
]


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


@dataclass(frozen=True)
class _Training:
    """How every network is trained: Adam from the common w0, same data order, until L_D ≤ ``fit_loss``."""

    epochs: int
    lr: float
    batch_size: int
    fit_loss: float
    seed: int

    def fit(self, net0, init_state: dict, ds):
        """A copy of ``net0`` at w0 trained on ``ds``'s (noisy) labels; returns (net, stop, epochs run)."""
        from ..training import train

        net = copy.deepcopy(net0)
        net.load_state_dict(init_state)
        stop = _FitStop(ds.x_train, ds.y_train, self.fit_loss)
        tr = train(
            net,
            ds.train_loader(batch_size=self.batch_size, shuffle=True, seed=self.seed),
            epochs=self.epochs,
            lr=self.lr,
            optimizer="adam",
            seed=self.seed,
            callbacks=[stop],
            progress=False,
        )
        net.eval()
        return net, stop, tr.epochs_run


@dataclass(frozen=True)
class _Measure:
    """How IW is measured at a (β, λ): the methods, E_Q[L_D]'s draws and the variational fit."""

    methods: tuple[str, ...]
    mc_samples: int
    seed: int
    variational_epochs: int
    variational_tol: float
    variational_lr: float
    # The Fisher-form curvature of the last net measured: (net, FisherPoints).
    _last: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __call__(self, net, data, init_state: dict, method: str, beta: float, prior_scale: float):
        """:func:`weightinfo.information` of ``net`` on ``data``, P = N(w0, λ² I); (result, seconds)."""
        from ..iw import information
        from ..iw.points import FisherOptions, fisher_points

        kw: dict[str, Any] = {}
        tm = time.perf_counter()
        if method == "fisher":  # one curvature per net, shared by every (β, λ) measured on it
            if self._last.get("net") is not net:
                opts = FisherOptions(mc_samples=self.mc_samples, seed=self.seed, progress=False)
                self._last.update(net=net, points=fisher_points(net, data, opts))
            kw = {"precomputed": self._last["points"]}
        if method == "variational":
            kw = {
                "max_epochs": self.variational_epochs,
                "tol": self.variational_tol,
                "lr": self.variational_lr,
                "lr_decay": 1.0,  # the constant rate of the documented runs
            }
        res = information(
            net,
            data,
            beta=beta,
            prior_scale=prior_scale,
            prior_mean="init",
            init_state=init_state,
            method=method,
            structure="diag",
            mc_samples=self.mc_samples,
            seed=self.seed,
            progress=False,
            **kw,
        )
        return res, time.perf_counter() - tm


def _fit_row(f: float, noise: dict, net, stop, epochs_run: int, ds, clean, t_train: float) -> dict:
    """The training half of a fraction's row: labels changed, epochs, fit, accuracies."""
    x, y = ds.x_train, ds.y_train
    return {
        "fraction": f,
        "n_corrupted": noise["n_corrupted"],
        "n_changed": noise["n_changed"],
        "epochs": epochs_run,
        "fit_reached": stop.reached,
        "train_loss": stop.loss,
        "train_acc": _accuracy(net, x, y),
        "train_acc_clean_labels": _accuracy(net, x, clean.y_train),
        "test_acc": _accuracy(net, ds.x_test, ds.y_test),
        "train_time_s": t_train,
    }


def _record_method(row: dict, layers: dict, method: str, res, dt: float) -> None:
    """Write one method's IW at the main (β, λ) into the fraction's row and its per-layer entries."""
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


def _sensitivity_cell(net, data, init_state, measure: _Measure, beta: float, lam: float) -> dict:
    """Both methods at a further (β, λ) on the same trained network."""
    mt = sum(_mean_terms(net, init_state, lam).values())
    cell: dict[str, Any] = {"beta": beta, "prior_scale": lam, "mean_term": mt}
    for method in measure.methods:
        res, _ = measure(net, data, init_state, method, beta, lam)
        cell[f"iw_{method}"] = res.nats
        cell[f"curvature_term_{method}"] = res.nats - mt
        cell[f"expected_loss_{method}"] = res.expected_loss
    return cell


def _one_fraction(
    f, clean, net0, init_state, training, measure, beta, prior_scale, sensitivity, say
):
    """Corrupt a fraction ``f`` of the labels, fit a network from w0, measure IW; (row, per-layer rows)."""
    from ..data import corrupt_labels

    t0 = time.perf_counter()
    ds = corrupt_labels(clean, f, seed=training.seed)
    noise = ds.info["label_noise"]
    net, stop, epochs_run = training.fit(net0, init_state, ds)
    row = _fit_row(f, noise, net, stop, epochs_run, ds, clean, time.perf_counter() - t0)
    mean_layers = _mean_terms(net, init_state, prior_scale)
    row["mean_term"] = sum(mean_layers.values())
    say(
        f"fraction {f:g}: {noise['n_changed']} labels changed; fit in {epochs_run} epochs "
        f"({row['train_time_s']:.0f} s): train acc {100 * row['train_acc']:.1f}%, "
        f"test acc {100 * row['test_acc']:.1f}%, L_D {stop.loss:.4f}"
    )
    if not stop.reached or row["train_acc"] < 0.99:
        say(f"  warning: fraction {f:g} not fit (loss {stop.loss:.4f}, acc {row['train_acc']:.3f})")
    data = (ds.x_train, ds.y_train)
    layers = {layer: {"layer": layer, "mean_term": v} for layer, v in mean_layers.items()}
    for method in measure.methods:
        res, dt = measure(net, data, init_state, method, beta, prior_scale)
        _record_method(row, layers, method, res, dt)
        say(
            f"  {method}: IW = {res.nats:,.0f} nats (mean term {row['mean_term']:,.0f}, "
            f"curvature term {res.nats - row['mean_term']:,.0f}); E_Q[L_D] = "
            f"{res.expected_loss:.4f} ({dt:.0f} s)"
        )
    row["sensitivity"] = []
    for b, lam in sensitivity:
        cell = _sensitivity_cell(net, data, init_state, measure, b, lam)
        row["sensitivity"].append(cell)
        say(
            f"  β = {b:g}, λ = {lam:g}: "
            + ", ".join(f"IW {m} {cell[f'iw_{m}']:,.0f}" for m in measure.methods)
            + f" (mean term {cell['mean_term']:,.0f})"
        )
    row["time_s"] = time.perf_counter() - t0
    return row, list(layers.values())


def _orderings(rows: list[dict], methods, sensitivity) -> tuple[dict, list[dict]]:
    """Whether IW, the curvature and the mean term rise strictly with the fraction (main and further β, λ)."""
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
    return ordering, sens_ordering


def _settings_record(
    dataset, clean, data_seed, fractions, widths, n_params, training, measure, beta, prior_scale,
    sensitivity,
) -> dict[str, Any]:  # fmt: skip
    """The ``settings`` block of the result (what the report and a rerun need)."""
    n = len(clean)
    return {
        "dataset": dataset,
        "dataset_description": clean.describe(),
        "n_train": n,
        "n_classes": clean.n_classes,
        "data_seed": data_seed,
        "fractions": fractions,
        "model": {"name": "mlp", "widths": list(widths), "n_params": n_params},
        "training": {
            "optimizer": "adam",
            "lr": training.lr,
            "batch_size": training.batch_size,
            "max_epochs": training.epochs,
            "fit_loss": training.fit_loss,
            "stop": "first epoch with mean training loss (noisy labels, whole set) <= fit_loss",
            "seed": training.seed,
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
                "max_epochs": measure.variational_epochs,
                "tol": measure.variational_tol,
                "lr": measure.variational_lr,
                "init_var": "fisher",
            },
            "mc_samples": measure.mc_samples,
            "sensitivity": [list(p) for p in sensitivity],
            "data": "the training images with the (noisy) labels each network was fit to",
            "units": "nats",
        },
        "methods": list(measure.methods),
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
    quick : whether these are the smoke-test settings (:data:`QUICK`); recorded as ``"quick"`` and
        announced at the top of the report.

    Returns
    -------
    dict with ``settings``, ``rows`` (one per fraction: accuracies, IW per method, mean term, curvature
    terms, E_Q[L_D], times, and the ``sensitivity`` cells), ``per_layer`` (per fraction and layer),
    ``ordering`` (per method: whether IW, the curvature term, and the mean term rise strictly with the
    fraction), ``sensitivity_ordering``, ``label_nats``, ``command``, ``machine``, ``time_s``, ``quick`` and, with
    ``out_dir``, ``files``.
    """
    import torch

    from ..data import load_dataset
    from ..models import build_model, count_parameters

    say = _reporter(progress)
    fractions, methods, widths, sensitivity = check_settings(
        fractions, methods, widths, beta, prior_scale, sensitivity
    )
    training = _Training(epochs, lr, batch_size, fit_loss, seed)
    measure = _Measure(
        methods, mc_samples, seed, variational_epochs, variational_tol, variational_lr
    )

    t_start = time.perf_counter()
    made = made_by(quick=quick)  # the code at the start (the checkout may move during a long run)
    clean = load_dataset(dataset, seed=data_seed, n_samples=n_train, root=data_root)
    say(f"{clean.describe()}; MLP {widths}; β = {beta:g} per sample, λ = {prior_scale:g}")
    torch.manual_seed(seed)  # the common initial weights w0
    net0 = build_model("mlp", clean.input_shape, clean.n_classes, widths=widths)
    init_state = copy.deepcopy(net0.state_dict())

    rows: list[dict[str, Any]] = []
    per_layer: list[dict[str, Any]] = []
    for f in fractions:
        row, layers = _one_fraction(
            f, clean, net0, init_state, training, measure, beta, prior_scale, sensitivity, say
        )
        rows.append(row)
        per_layer.append({"fraction": f, "layers": layers})

    ordering, sens_ordering = _orderings(rows, methods, sensitivity)
    if command is None:
        command = argv_command()
    settings = _settings_record(
        dataset, clean, data_seed, fractions, widths, count_parameters(net0), training, measure,
        beta, prior_scale, sensitivity,
    )  # fmt: skip
    out: dict[str, Any] = {
        "experiment": "random_labels",
        "description": (
            "Information in the weights (nats) of an MLP fit to a fraction of random training labels, "
            "same initialisation, same beta and lambda for every fraction and method"
        ),
        "quick": bool(quick),
        "settings": settings,
        "rows": rows,
        "per_layer": per_layer,
        "ordering": ordering,
        "sensitivity_ordering": sens_ordering,
        "label_nats": {
            "note": "n_corrupted * ln(n_classes): the entropy of the random labels drawn (given their positions)",
            "values": [r["n_corrupted"] * math.log(clean.n_classes) for r in rows],
        },
        "command": command,
        "made_by": made,
        "machine": machine_info(),
        "time_s": time.perf_counter() - t_start,
    }
    if out_dir is not None:
        out["files"] = [str(p) for p in write_outputs(out, out_dir)]
        for p in out["files"]:
            say(f"wrote {p}")
    return out


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------
