"""``weightinfo activations``: effective information and nuisance Fisher of a trained network's activations.

Achille, Paolini & Soatto (2019, §3): the weight noise the Information Lagrangian tolerates, n ∼ N(0, Σ*) with Σ*
the posterior of :func:`weightinfo.information` at ``--beta`` (Fisher form, prior N(w0, λ² I)), turns each layer's
activations into a channel x ↦ f_ℓ(x; w* + n). For every layer this command reports

* I_eff(x; z) = I(X; Z), X uniform over ``--n-inputs`` test inputs (nats, ≤ ln N;
  :func:`weightinfo.effective_information`, linearised-Gaussian estimator);
* the Fisher information of each ``--nuisance`` θ in z (mean + covariance term, nats per unit θ² per input;
  :func:`weightinfo.activation_fisher`): small = the layer is (effectively) invariant to that nuisance.

Writes to ``--out DIR`` (checked first; all files or none): ``activations.json`` (the options, IW, and the two
results' ``to_dict()``) and ``activations.png`` (I_eff per layer, and the invariance profile: log10 Fisher, layers
× nuisances).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    STATE,
    ModelSource,
    Quiet,
    all_or_nothing,
    check_output,
    command_line,
    info,
    load_source,
    say,
    training_data,
    user_errors,
)
from ._options import model_source_options

__all__ = ["activations_cmd", "default_layers", "measure_activations", "print_activations"]

#: Default nuisances: the two the paper's invariance discussion is about most, and one photometric.
DEFAULT_NUISANCES = "translate-x,rotate,brightness"


def default_layers(model) -> list[str]:
    """Every ``nn.Linear`` module of ``model``, in order (the last is usually the output layer).

    Conv feature maps are left to ``--layers``: their per-example Jacobian is dim z × k (LeNet's conv2 on
    28x28 images: 3 136 units × 2 572 weights), which took 16 s per input for the activation Fisher on one CPU
    thread (measured), against 1 s for all of LeNet's Linear layers."""
    from torch import nn

    return [n for n, m in model.named_modules() if n and isinstance(m, nn.Linear)]


def _names(text: str | None, option: str) -> list[str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"{option} needs at least one name")
    return parts


@model_source_options
def activations_cmd(
    ctx: typer.Context,
    src: ModelSource,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for activations.json / .png.")],
    beta: Annotated[
        float,
        typer.Option(
            help="β per sample of the information posterior whose noise makes the channel (mean-loss "
            "convention). Larger β: more noise, less effective information."
        ),
    ] = 1e-3,
    prior_scale: Annotated[
        float, typer.Option(help="λ of the prior N(w0, λ² I) of the information posterior.")
    ] = 0.1,
    nuisance: Annotated[
        str,
        typer.Option(
            help="Comma-separated nuisances: translate-x, translate-y (pixels), rotate (radians), scale, "
            "brightness, contrast, gaussian-noise."
        ),
    ] = DEFAULT_NUISANCES,
    layers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated module names (default: every Linear module; conv feature maps cost "
            "much more, name them here); 'output' for the model's output."
        ),
    ] = None,
    n_samples: Annotated[
        int | None,
        typer.Option(help="Training samples for the information posterior (default: all).", min=1),
    ] = None,
    n_inputs: Annotated[
        int, typer.Option(help="Test inputs the activations are measured on.", min=2)
    ] = 64,
    activation_variance: Annotated[
        float,
        typer.Option(
            help="ν: extra N(0, ν I) on z for I_eff where Σ_z is singular (conv layers with more units "
            "than noisy weights); gives a lower bound on I_eff."
        ),
    ] = 1e-4,
    jitter: Annotated[
        float,
        typer.Option(help="ε: Σ_z + ε·tr(Σ_z)/dim·I in the activation Fisher (0: pseudo-inverse)."),
    ] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed of the Monte Carlo draws.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Effective information I_eff and nuisance Fisher of each layer's noisy activations (paper §3)."""
    from .._base.provenance import made_by
    from ..iw import information
    from ..report import write_json_atomic

    quiet = quiet or STATE.quiet
    made = made_by(command=command_line(ctx, env=True))
    with user_errors():
        check_output(out, "--out", folder=True)
        nuisances = _names(nuisance, "--nuisance")
        from ..activations import get_nuisance

        for n in nuisances:
            get_nuisance(n)  # unknown names fail before any work
        ck, ds, name, _, _ = load_source(src, quiet=quiet)
        model = ck.model.eval()
        chosen = _names(layers, "--layers") or default_layers(model)
        chosen = [None if c == "output" else c for c in chosen]
        x, y = training_data(ck, ds, loss="cross_entropy", n_samples=n_samples)
        t0 = time.perf_counter()
        init = ck.init_state_dict
        info(
            f"information posterior at β = {beta:g}, λ = {prior_scale:g} on {len(y)} samples", quiet
        )
        post = information(
            model,
            (x, y),
            beta=beta,
            prior_scale=prior_scale,
            prior_mean="init" if init is not None else "zero",
            init_state=init,
            method="fisher",
            mc_samples=0,
            progress=False,
        )
        xs = ds.x_test[:n_inputs]
        eff, fishers = measure_activations(
            model,
            (xs, ds.y_test[:n_inputs]),
            post,
            chosen,
            nuisances,
            activation_variance=activation_variance,
            jitter=jitter,
            seed=seed,
            quiet=quiet,
        )
        elapsed = time.perf_counter() - t0
        print_activations(eff, fishers, post, name)
        options = {
            "dataset": name,
            "beta": beta,
            "prior_scale": prior_scale,
            "nuisances": nuisances,
            "layers": [c or "output" for c in chosen],
            "n_samples": int(len(y)),
            "n_inputs": int(len(xs)),
            "activation_variance": activation_variance,
            "jitter": jitter,
            "seed": seed,
        }
        record = {
            "options": options,
            "information_nats": post.nats,
            "effective_information": eff.to_dict(),
            "activation_fisher": {n: a.to_dict() for n, a in fishers.items()},
            "elapsed_s": elapsed,
            "made_by": made,
        }
        with all_or_nothing(out) as stage:
            write_json_atomic(stage / "activations.json", record)
            _plot(eff, fishers, stage / "activations.png")
        for f in ("activations.json", "activations.png"):
            info(f"wrote {Path(out) / f}", quiet)


def measure_activations(
    model, inputs, post, layers, nuisances, *, activation_variance, jitter, seed, quiet
):
    """I_eff of ``layers`` and the activation Fisher of each nuisance, on ``inputs``, with ``post``'s noise."""
    from ..activations import activation_fisher, effective_information

    info(f"effective information of {len(layers)} layer(s) on {len(inputs[0])} inputs", quiet)
    eff = effective_information(
        model,
        inputs,
        post,
        layers=layers,
        seed=seed,
        activation_variance=activation_variance,
        progress=False,
    )
    fishers = {}
    for n in nuisances:
        info(f"activation Fisher for {n}", quiet)
        fishers[n] = activation_fisher(
            model, inputs, post, n, layers=layers, jitter=jitter, progress=False
        )
    return eff, fishers


def print_activations(eff, fishers, post, name) -> None:
    """The per-layer table of I_eff and nuisance Fisher on stdout."""
    say(
        f"{name}: IW = {post.nats:,.1f} nats at β = {post.beta:g}; I_eff ceiling ln N = "
        f"{eff.ceiling:.3f} nats (N = {eff.n})"
    )
    heads = ["layer", "I_eff nats", *(f"F[{n}]" for n in fishers)]
    rows = []
    for key, v in eff.per_layer.items():
        cells = [key, f"{v:.3f} ± {eff.stderr[key]:.3f}"]
        cells += [f"{fishers[n].per_layer[key]:.4g}" for n in fishers]
        rows.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    say("  ".join(h.ljust(w) for h, w in zip(heads, widths)))
    for r in rows:
        say("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def _plot(eff, fishers, path: Path) -> Path:
    import numpy as np

    from ..report.plots import figure, save_figure

    keys = list(eff.per_layer)
    fig = figure(10.0, 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.bar(range(len(keys)), [eff.per_layer[k] for k in keys], yerr=[eff.stderr[k] for k in keys])
    ax1.axhline(eff.ceiling, color="k", ls="--", lw=1, label=f"ln N = {eff.ceiling:.2f}")
    ax1.set_xticks(range(len(keys)), keys, rotation=30, fontsize=8)
    ax1.set_ylabel("I_eff (nats)")
    ax1.legend(fontsize=8)
    names = list(fishers)
    grid = np.array(
        [[math.log10(max(fishers[n].per_layer[k], 1e-300)) for n in names] for k in keys]
    )
    im = ax2.imshow(grid, aspect="auto", cmap="viridis")
    ax2.set_yticks(range(len(keys)), keys, fontsize=8)
    ax2.set_xticks(range(len(names)), names, rotation=30, fontsize=8)
    fig.colorbar(im, ax=ax2, label="log10 Fisher (per unit θ²)")
    ax2.set_title("invariance profile (low = invariant)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
