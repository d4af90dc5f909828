"""Invariance: does less information in the weights go with activations that carry less about nuisances?

Achille, Paolini & Soatto (2019, §3) argue that a network with little information in its weights IW has noisy
activations with a small Fisher information about the input (Prop 3.2), hence (for a *sufficient*
representation, which is not shown) effectively invariant to nuisances. This experiment measures the chain on
a set of networks that differ in IW, all at ONE fixed β and λ:

1. Networks: a LeNet (``channels``, ``hidden``) from the same initial weights w0 and data order, on ``n_train``
   images of ``dataset`` (Fashion-MNIST average-pooled ``downsample``× to 14×14, so that conv feature maps stay
   small enough for the dense Σ_z of the activation channel), every combination of: translation augmentation
   (off / random integer shifts in [−shift, shift] px along x and y, one per batch, ``torch.roll``), a fraction
   of random labels (``fractions``), and Gaussian weight noise during training (``weight_noise``: each step uses
   w + σε, ε ∼ N(0, I), for the loss; the update applies to w). Adam, ``epochs`` epochs.
2. IW = :func:`weightinfo.information` (``method="fisher"``, diagonal, P = N(w0, λ² I)) on the first ``n_iw``
   training images with the labels each network was trained on; its posterior variances Σ are the weight noise.
3. On ``n_eval`` fixed test images: I_eff per layer (:func:`~weightinfo.activations.effective_information`,
   gaussian estimator, activation noise ν = ``activation_variance`` for every layer and network), and the
   activation Fisher (:func:`~weightinfo.activations.activation_fisher`, jitter ``jitter`` for every layer) for
   each nuisance and for the class direction x + θ·d, d the unit-norm difference of the training means of
   classes ``class_pair`` (:func:`._invariance_measures.class_direction`).
4. The normalised variance of Quiroga et al. (``tmeasures``' definition, implemented in
   :func:`._invariance_measures.normalised_variance`: the package pulls OpenCV and scikit-image) of the
   deterministic activations, each nuisance at the grid ``nv_grid`` of θ.

Outputs (``invariance.json``, ``.png``, ``.md``; :mod:`._invariance_report`): per network IW, I_eff and Fisher
per layer; Spearman ρ across networks of IW vs Fisher per nuisance and vs I_eff, per layer (headline at
``headline_layer``) with bootstrap 95 % intervals over networks; the depth profile of the ratio nuisance /
class-direction Fisher; the effect of augmentation on the translate-x Fisher (pairs that differ only in it);
and per network the Spearman ρ across layers between the normalised variance and the Fisher profile.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import time
from collections.abc import Callable
from typing import Any

from ._invariance_measures import (
    activations,
    class_direction,
    normalised_variance,
    spearman_ci,
)
from ._report_files import argv_command, finish

__all__ = ["INVARIANCE", "INVARIANCE_QUICK", "run_invariance", "spearman_ci", "normalised_variance"]

INVARIANCE: dict[str, Any] = {
    "dataset": "fashion-mnist",
    "n_train": 10_000,
    "data_seed": 0,
    "downsample": 2,
    "channels": (6, 16),
    "hidden": (120, 84),
    # 30 epochs (2,370 Adam steps): with 5 the networks were under-trained (train accuracy 0.34–0.75), so a
    # lower IW mostly meant a less-trained network (the first run at 0bbf816).
    "epochs": 30,
    "lr": 1e-3,
    "batch_size": 128,
    "augment": (False, True),
    "shift": 2,
    "fractions": (0.0, 0.5),
    "weight_noise": (0.0, 0.03),
    "beta": 1e-5,
    "prior_scale": 0.05,
    "n_iw": 2000,
    "n_eval": 32,
    # conv2 (784 units, 2,572 noisy weights) costs ~8 s per direction per 32 images: left out; fc1 as much,
    # kept for the depth profile
    "fisher_layers": ("conv1", "fc1", "fc2", "output"),
    "eff_layers": ("fc1", "fc2", "output"),
    "activation_variance": 1e-2,
    "eff_samples": 16,
    "jitter": 1e-3,
    "nuisances": ("translate-x", "rotate", "brightness"),
    "class_pair": (0, 1),
    "nv_grid": {
        "translate-x": (-2.0, -1.0, 0.0, 1.0, 2.0),
        "rotate": (-0.3, -0.15, 0.0, 0.15, 0.3),
        "brightness": (-0.2, -0.1, 0.0, 0.1, 0.2),
    },
    "headline_layer": "fc2",
    "n_boot": 2000,
}

INVARIANCE_QUICK: dict[str, Any] = {
    **INVARIANCE,
    "dataset": "digits",
    "n_train": 600,
    "downsample": 1,
    "channels": (4, 8),
    "hidden": (32, 16),
    "epochs": 2,
    "batch_size": 64,
    "shift": 1,
    "n_iw": 300,
    "n_eval": 16,
    "eff_samples": 4,
    "nv_grid": {
        "translate-x": (-1.0, 0.0, 1.0),
        "rotate": (-0.3, 0.0, 0.3),
        "brightness": (-0.2, 0.0, 0.2),
    },
    "n_boot": 200,
}


def _train(net, x, y, s: dict, augment: bool, sigma: float, seed: int) -> float:
    """Adam on (x, y) for s['epochs'] epochs, with per-batch roll augmentation and weight noise σ; seconds."""
    import torch
    from torch.func import functional_call

    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=s["lr"])
    net.train()
    for _ in range(s["epochs"]):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), s["batch_size"]):
            idx = perm[i : i + s["batch_size"]]
            xb, yb = x[idx], y[idx]
            shifts = torch.randint(-s["shift"], s["shift"] + 1, (2,), generator=gen)
            noise = {
                n: sigma * torch.randn(p.shape, generator=gen) for n, p in net.named_parameters()
            }
            if augment:
                xb = torch.roll(xb, shifts=(int(shifts[0]), int(shifts[1])), dims=(-2, -1))
            params = {n: p + noise[n] for n, p in net.named_parameters()} if sigma else None
            out = functional_call(net, params, (xb,)) if sigma else net(xb)
            loss = torch.nn.functional.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    return time.perf_counter() - t0


def _accuracy(net, x, y) -> float:
    import torch

    with torch.no_grad():
        return float((net(x).argmax(1) == y).double().mean())


def _measure(net, init_state, x_iw, y_iw, x_ev, nuisances: dict, s: dict, seed: int) -> dict:
    """IW, I_eff per layer, Fisher per nuisance per layer, normalised variance; with their times."""
    import torch

    from ..activations import activation_fisher, effective_information
    from ..activations.nuisances import apply_nuisance
    from ..iw import information

    row: dict[str, Any] = {"times_s": {}}
    t = time.perf_counter()
    iw = information(
        net, (x_iw, y_iw), beta=s["beta"], prior_scale=s["prior_scale"], prior_mean="init",
        init_state=init_state, method="fisher", structure="diag", seed=seed, progress=False,
    )  # fmt: skip
    row["iw"] = float(iw.nats)
    row["times_s"]["iw"] = time.perf_counter() - t
    t = time.perf_counter()
    eff = effective_information(
        net, x_ev, iw, layers=list(s["eff_layers"]), estimator="gaussian",
        samples=s["eff_samples"], activation_variance=s["activation_variance"], seed=seed,
        progress=False,
    )  # fmt: skip
    row["i_eff"] = dict(eff.per_layer)
    row["i_eff_stderr"] = dict(eff.stderr)
    row["i_eff_ceiling"] = eff.ceiling
    row["times_s"]["i_eff"] = time.perf_counter() - t
    row["fisher"], row["fisher_mean_term"] = {}, {}
    data = (x_ev, torch.zeros(len(x_ev), dtype=torch.long))
    for name, fn in nuisances.items():
        t = time.perf_counter()
        af = activation_fisher(
            net, data, iw, fn, layers=[None if ly == "output" else ly for ly in s["fisher_layers"]],
            jitter=s["jitter"], progress=False,
        )  # fmt: skip
        row["fisher"][name] = {k: float(v) for k, v in af.per_layer.items()}
        row["fisher_mean_term"][name] = {k: float(v) for k, v in af.mean_term.items()}
        row["times_s"][f"fisher {name}"] = time.perf_counter() - t
    t = time.perf_counter()
    row["normalised_variance"], row["nv_units_left_out"] = {}, {}
    for name, grid in s["nv_grid"].items():
        per = [activations(net, apply_nuisance(name, x_ev, th), s["fisher_layers"]) for th in grid]
        row["normalised_variance"][name], row["nv_units_left_out"][name] = {}, {}
        for layer in s["fisher_layers"]:
            v, k = normalised_variance(torch.stack([p[layer] for p in per]))
            row["normalised_variance"][name][layer] = v
            row["nv_units_left_out"][name][layer] = k
    row["times_s"]["normalised_variance"] = time.perf_counter() - t
    return row


def _load(s: dict, data_root, seed: int):
    import torch.nn.functional as F

    from ..data import load_dataset

    ds = load_dataset(s["dataset"], seed=s["data_seed"], n_samples=s["n_train"], root=data_root)
    k = int(s["downsample"])

    def pool(x):
        return F.avg_pool2d(x, k) if k > 1 else x

    return ds, pool


def run_invariance(
    out_dir: str | os.PathLike | None = None,
    *,
    quick: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = print,
    settings: dict[str, Any] | None = None,
    data_root: str | os.PathLike | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train the networks, measure IW / I_eff / activation Fisher / normalised variance, analyse, report.

    ``settings`` overrides keys of :data:`INVARIANCE` (or :data:`INVARIANCE_QUICK` with ``quick``)."""
    import torch

    from .._base.machine import machine_info
    from .._base.provenance import made_by
    from ..data import corrupt_labels
    from ..models import build_model, count_parameters
    from ._invariance_report import analyse, reading, write_outputs

    s = {**(INVARIANCE_QUICK if quick else INVARIANCE), **(settings or {})}
    t_start = time.perf_counter()
    made = made_by(quick=quick)
    clean, pool = _load(s, data_root, seed)
    x_test = pool(clean.x_test)
    g = torch.Generator().manual_seed(s["data_seed"])
    x_ev = x_test[torch.randperm(len(x_test), generator=g)[: s["n_eval"]]].contiguous()
    cls_fn, _ = class_direction(pool(clean.x_train), clean.y_train, tuple(s["class_pair"]))
    nuisances: dict[str, Any] = {n: n for n in s["nuisances"]}
    nuisances["class-direction"] = cls_fn
    torch.manual_seed(seed)
    in_shape = tuple(x_ev.shape[1:])
    net0 = build_model(
        "lenet", in_shape, clean.n_classes, channels=s["channels"], hidden=s["hidden"]
    )
    init_state = copy.deepcopy(net0.state_dict())
    log(
        f"{clean.describe()}, pooled {s['downsample']}x to {in_shape}; LeNet {s['channels']} "
        f"{s['hidden']} ({count_parameters(net0)} params); β = {s['beta']:g}, λ = {s['prior_scale']:g}"
    )
    rows = []
    for aug, frac, sigma in itertools.product(s["augment"], s["fractions"], s["weight_noise"]):
        t0 = time.perf_counter()
        ds = corrupt_labels(clean, frac, seed=seed) if frac > 0 else clean
        x_tr, y_tr = pool(ds.x_train), ds.y_train
        net = copy.deepcopy(net0)
        net.load_state_dict(init_state)
        t_train = _train(net, x_tr, y_tr, s, aug, sigma, seed)
        row = {
            "name": f"aug={int(aug)} f={frac:g} σ={sigma:g}",
            "augment": bool(aug),
            "fraction": frac,
            "weight_noise": sigma,
            "train_acc": _accuracy(net, x_tr, y_tr),
            "test_acc": _accuracy(net, x_test, clean.y_test),
        }
        n_iw = int(s["n_iw"])
        row.update(_measure(net, init_state, x_tr[:n_iw], y_tr[:n_iw], x_ev, nuisances, s, seed))
        row["times_s"]["train"] = t_train
        row["time_s"] = time.perf_counter() - t0
        f_head = {n: row["fisher"][n][s["headline_layer"]] for n in row["fisher"]}
        log(
            f"{row['name']}: train acc {row['train_acc']:.3f}, test acc {row['test_acc']:.3f}, "
            f"IW {row['iw']:,.0f} nats, I_eff {s['headline_layer']} "
            f"{row['i_eff'].get(s['headline_layer'], math.nan):.3f}, Fisher {s['headline_layer']} "
            + ", ".join(f"{n} {v:.3g}" for n, v in f_head.items())
            + f" ({row['time_s']:.0f} s)"
        )
        rows.append(row)
    if command is None:
        command = argv_command()
    settings_out = {
        k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, tuple) else v)
        for k, v in s.items()
    }
    settings_out.update(
        seed=seed,
        input_shape=list(in_shape),
        n_params=count_parameters(net0),
        dataset_description=clean.describe(),
    )
    out: dict[str, Any] = {
        "experiment": "invariance",
        "description": (
            "Information in the weights vs effective information and nuisance Fisher of the noisy "
            "activations (Achille, Paolini & Soatto 2019 §3), at one beta and lambda, across networks"
        ),
        "quick": bool(quick),
        "settings": settings_out,
        "networks": rows,
        "analysis": analyse(rows, settings_out, seed),
        "command": command,
        "made_by": made,
        "machine": machine_info(),
        "time_s": time.perf_counter() - t_start,
    }
    return finish(out, out_dir, reading=reading, write_outputs=write_outputs, log=log)
