"""``weightinfo measure``: how many nats a trained network stores in its weights, and in which layers.

The model comes from ``--checkpoint`` or is trained on the fly with the dataset's defaults and cached (as in
``weightinfo fisher``). On its training data (or the first ``--n-samples``) it computes
:func:`weightinfo.iw.information` — IW = KL(Q*‖P) at the optimum of C_β = E_Q[L_D] + β·KL(Q‖P),
with L_D the mean per-sample loss and β per sample — prints the per-layer table ("where is the information")
and a summary, and writes to ``--out DIR``:

* ``report.json``: ``InformationResult.to_dict()``;
* ``where.png``: nats per layer and per filter / output unit (:func:`weightinfo.report.plots.plot_where`);
* with ``--tensorboard DIR``: the where-map as an image and IW, per-module nats, L_D(w*), C_β as scalars, in
  TensorBoard event files (:mod:`weightinfo.integrations.tensorboard`, global step 0);
* with ``--betas``: ``curve.json`` (``InformationCurve.to_dict()``) and ``curve.png``, the loss-vs-information
  curve (:func:`weightinfo.iw.curve.information_curve`; the Fisher method reuses one curvature for
  the main result and every β of the curve).

``--out`` is checked before any work and the files appear all together or not at all. A result that is not a
finite number (IW, or E_Q[L_D] when ``--mc-samples`` > 0) is an error naming ``--beta`` / ``--prior-scale``,
never a printed ``nan``. ``--resume FILE`` (``--method variational``) saves the variational fit after every
epoch and on Ctrl-C; the same command run again continues from there and gives the uninterrupted result.

:func:`compute_measure`, :func:`print_measure` and :func:`write_measure` are shared with ``weightinfo demo``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import typer

from ._common import (
    STATE,
    BatchSizeOpt,
    LikelihoodOpt,
    ModelSource,
    NSamplesOpt,
    Quiet,
    all_or_nothing,
    check_output,
    fail,
    info,
    load_source,
    progress_enabled,
    say,
    training_data,
    user_errors,
)
from ._information_table import print_information_table, summary_lines
from ._options import TensorBoardOpt, model_source_options

__all__ = [
    "Measurement",
    "check_finite",
    "compute_measure",
    "measure_cmd",
    "print_measure",
    "training_data",
    "write_measure",
]

#: Defaults of ``measure`` (and ``demo``), chosen on the digits MLP (256,256; N = 1438, 85k weights):
#: β = 1e-6 per sample and λ = 0.1 around the initial weights give IW ≈ 19k nats, of which ≈ 22% is the
#: β-independent mean term ‖w* − w0‖²/(2λ²) and the rest the curvature term, while the Gaussian noise of Q*
#: raises the loss only from L_D(w*) ≈ 0.044 to E_Q[L_D] ≈ 0.07 nats. λ = "weights" sets λ_l² = mean(w − w0)²,
#: which makes the mean term exactly k/2 nats for any network (42.5k here) and leaves < 10% to the data-dependent
#: part; larger λ or β let the noise of Q* wreck the network (E_Q[L_D] ≫ ln 10), smaller β make IW grow
#: like (k/2)·ln(1/β) for every weight, informative or not.
DEFAULT_BETA = 1e-6
DEFAULT_PRIOR_SCALE = "0.1"
#: β values of the curve ``weightinfo demo`` draws (per sample).
DEMO_BETAS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3)

BETA_HELP = (
    "β per sample (mean-loss convention; β·N for a summed loss): the price in loss of one nat in the weights. "
    "Large β: coarse code, few nats, more loss; small β: many nats. Default 1e-6: on the digits MLP "
    "IW ≈ 19,000 nats, ~22% of it the prior's mean term, and the noise of Q* raises the loss only from "
    "L_D(w*) ≈ 0.044 to E_Q[L_D] ≈ 0.07 (β = 1e-3 ≈ 1/N, the ELBO value, gives IW ≈ mean term alone "
    "and E_Q[L_D] ≈ 0.5)."
)
PRIOR_SCALE_HELP = (
    "Prior P = N(w0, λ² I): λ, the range in which a weight is stored (one number for every layer), or "
    "'weights' for λ_l = RMS of (w − w0) per layer (this makes the mean term exactly #params/2 nats, so the "
    "per-layer shares then mostly follow parameter counts). Default 0.1: about the scale of trained weights."
)


class Measurement(NamedTuple):
    """What :func:`compute_measure` returns."""

    result: Any  # InformationResult at --beta
    curve: Any  # InformationCurve over --betas, or None
    curvature: Any  # the Curvature used (Fisher method), or None
    elapsed: float
    options: dict


def parse_prior_scale(text: str | float) -> float | str:
    """A positive number or ``"weights"``; ``ValueError`` naming ``--prior-scale`` otherwise."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        t = str(text).strip()
        if t.lower() == "weights":
            return "weights"
        try:
            value = float(t)
        except ValueError:
            raise ValueError(
                f"--prior-scale must be a number > 0 or 'weights', got {text!r}"
            ) from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"--prior-scale must be a number > 0 or 'weights', got {text!r}")
    from ..posterior.prior import check_scale

    return check_scale("--prior-scale", value)


def check_beta(beta: float) -> float:
    if not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"--beta must be a finite number > 0 (per sample), got {beta!r}")
    return float(beta)


def parse_betas(text: str | None) -> list[float] | None:
    """``"1e-7,1e-6"`` → ``[1e-7, 1e-6]``; ``ValueError`` naming ``--betas`` unless all are finite > 0."""
    if text is None:
        return None
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError("--betas needs at least one value, e.g. --betas 1e-7,1e-6,1e-5")
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"--betas must be comma-separated numbers > 0, got {p!r}") from None
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"--betas must hold finite numbers > 0, got {p!r}")
        out.append(v)
    return sorted(set(out))


def _check_resume(method: str, betas: list[float] | None) -> None:
    if method != "variational":
        raise ValueError(
            "--resume applies to --method variational (the Fisher form is not iterative)"
        )
    if betas:
        raise ValueError("--resume resumes one variational fit; it cannot be combined with --betas")


def compute_measure(
    ck,
    ds,
    *,
    beta: float,
    betas: list[float] | None,
    prior_scale: float | str,
    prior_mean: str | None,
    method: str,
    structure: str,
    curvature: str,
    loss: str,
    n_samples: int | None,
    mc_samples: int,
    seed: int,
    batch_size: int,
    quiet: bool,
    state_path: Path | None = None,
) -> Measurement:
    """IW at ``beta`` (and the curve over ``betas``) of checkpoint ``ck`` on ``ds``'s training data.

    ``prior_mean=None`` means ``"init"`` when the checkpoint stores its initial weights, else ``"zero"``.
    With the Fisher method the curvature is computed once for the result and the whole curve.
    ``state_path`` (``--resume``, variational method only) is where the variational fit saves its state
    after every epoch and on Ctrl-C, and resumes from when the file holds a run of the same configuration.
    """
    from .._base import distributed as dist
    from ..iw import information, information_curve
    from ..iw.points import FisherOptions, fisher_points

    x, y = training_data(ck, ds, loss=loss, n_samples=n_samples)
    n_all = dist.global_count(int(x.shape[0]))  # x is this rank's share under torchrun
    init = ck.init_state_dict
    if prior_mean is None:
        prior_mean = "init" if init is not None else "zero"
    if prior_mean == "init" and init is None:
        raise ValueError(f"--prior-mean init: checkpoint {str(ck.path)!r} has no initial weights")
    model = ck.model.eval()
    kw = {
        "prior_scale": prior_scale,
        "prior_mean": prior_mean,
        "init_state": init,
        "method": method,
        "structure": structure,
        "curvature": curvature,
        "loss": loss,
        "mc_samples": mc_samples,
        "seed": seed,
        "batch_size": batch_size,
        "progress": progress_enabled(quiet),
    }
    if state_path is not None:
        _check_resume(method, betas)
        kw["state_path"] = state_path
    info(
        f"measuring the information in the weights ({method}, {structure}, {curvature}; β = {beta:g} "
        f"per sample, λ = {prior_scale}, prior mean {prior_mean}) on {n_all} training samples",
        quiet,
    )
    t0 = time.perf_counter()
    points = None  # the Fisher method: one curvature and L_D(w*) for the result and the whole curve
    if method == "fisher":
        shared = ("structure", "curvature", "loss", "mc_samples", "seed", "batch_size", "progress")
        points = fisher_points(model, (x, y), FisherOptions(**{k: kw[k] for k in shared}))
    result = information(model, (x, y), beta=beta, precomputed=points, **kw)
    curve = None
    if betas:
        info(f"loss-vs-information curve at {len(betas)} values of β", quiet)
        curve = information_curve(model, (x, y), betas=betas, precomputed=points, **kw)
    curv = points.matrix if points is not None else None
    options = {
        "beta": beta,
        "betas": betas,
        "prior_scale": prior_scale,
        "prior_mean": prior_mean,
        "method": method,
        "structure": structure,
        "curvature": curvature,
        "loss": loss,
        "n_samples": n_all,
        "mc_samples": mc_samples,
        "seed": seed,
        "batch_size": batch_size,
    }
    return Measurement(result, curve, curv, time.perf_counter() - t0, options)


def check_finite(m: Measurement, *, beta: float, prior_scale: float | str, mc_samples: int) -> None:
    """``ValueError`` naming the options when IW or (if estimated) E_Q[L_D] is not a finite number."""
    at = f"--beta {beta:g}, --prior-scale {prior_scale}"
    rows = [(m.result, at)]
    if m.curve is not None:
        rows += [
            (r, f"--betas value {r.beta:g}, --prior-scale {prior_scale}") for r in m.curve.results
        ]
    for r, where in rows:
        if not math.isfinite(r.nats):
            raise ValueError(
                f"IW is not finite ({r.nats}) at {where}: λ²h/β overflows float64; "
                "use a larger β or a smaller --prior-scale"
            )
        if mc_samples > 0 and not math.isfinite(r.expected_loss):
            raise ValueError(
                f"E_Q[L_D] is not finite ({r.expected_loss}) at {where}: weights drawn from Q* "
                "(noise variance up to λ² in flat directions) overflow the network; use a smaller "
                "--prior-scale or β, or --mc-samples 0 to skip E_Q[L_D]"
            )


def print_measure(m: Measurement) -> None:
    """Table, summary and (if any) the curve, on stdout."""
    print_information_table(m.result)
    for line in summary_lines(m.result):
        say(line)
    if m.curve is not None:
        say()
        say("loss vs information (E_Q[L_D] ± se, nats per sample; IW in nats; β per sample):")
        say(str(m.curve))
    say(f"computed in {m.elapsed:.2f} s")


def write_measure(m: Measurement, out: Path, *, title: str | None = None) -> list[Path]:
    """``report.json`` and ``where.png`` (and ``curve.json`` / ``curve.png``) in ``out``."""
    from ..report import write_json_atomic
    from ..report.plots import plot_curve, plot_where

    out = Path(out)
    paths = [
        write_json_atomic(out / "report.json", m.result.to_dict()),
        plot_where(m.result, out / "where.png", title=title),
    ]
    if m.curve is not None:
        paths.append(write_json_atomic(out / "curve.json", m.curve.to_dict()))
        paths.append(plot_curve(m.curve, out / "curve.png", title=title))
    return paths


@model_source_options
def measure_cmd(
    *,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for report.json and where.png (and curve.json, curve.png).",
            show_default=False,
        ),
    ],
    src: ModelSource,
    beta: Annotated[float, typer.Option(help=BETA_HELP)] = DEFAULT_BETA,
    prior_scale: Annotated[
        str, typer.Option("--prior-scale", help=PRIOR_SCALE_HELP)
    ] = DEFAULT_PRIOR_SCALE,
    prior_mean: Annotated[
        Literal["zero", "init"] | None,
        typer.Option(
            help="Prior mean w0: the initial weights (default when the checkpoint stores them: IW then "
            "counts what training changed) or zero.",
            show_default=False,
        ),
    ] = None,
    method: Annotated[
        Literal["fisher", "variational"],
        typer.Option(help="Closed form of the quadratic model, or a variational fit of Q."),
    ] = "fisher",
    structure: Annotated[
        Literal["diag", "filter", "kfac", "full"],
        typer.Option(help="Covariance of Q: per weight, per filter, Kronecker-factored or dense."),
    ] = "diag",
    curvature: Annotated[
        Literal["fisher", "ggn", "hessian"], typer.Option(help="Curvature H of the mean loss.")
    ] = "fisher",
    loss: LikelihoodOpt = None,
    n_samples: NSamplesOpt = None,
    mc_samples: Annotated[
        int, typer.Option(min=0, help="Weight draws w ~ Q* for E_Q[L_D] (0: skip).")
    ] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the weight draws.")] = 0,
    betas: Annotated[
        str | None,
        typer.Option(
            help="Also the loss-vs-information curve at these β, comma-separated, e.g. "
            "1e-8,1e-7,1e-6,1e-5,1e-4 (curve.json, curve.png)."
        ),
    ] = None,
    batch_size: BatchSizeOpt = 256,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="State file of the variational fit (--method variational): saved after every epoch "
            "and on Ctrl-C; a rerun with the same options and file continues where it stopped and gives "
            "the result of an uninterrupted run.",
            show_default=False,
        ),
    ] = None,
    activations: Annotated[
        bool,
        typer.Option(
            "--activations",
            help="Also the effective information and translate-x Fisher of every Linear layer's noisy "
            "activations under Q* (64 test inputs; `weightinfo activations` has every option); writes "
            "activations.json.",
        ),
    ] = False,
    tensorboard: TensorBoardOpt = None,
    quiet: Quiet = False,
) -> None:
    """Information in the weights (nats) of a trained model, per layer, with its plots.

    IW = KL(Q*‖P) at the optimum of C_β = E_Q[L_D] + β·KL(Q‖P) (Achille, Paolini & Soatto 2019), with L_D the
    mean per-sample loss, β per sample and P = N(w0, λ² I). Defaults (β = 1e-6, λ = 0.1, w0 = initial
    weights) give a non-trivial split of IW between the prior's mean term and the curvature term on the digits
    MLP while Q* keeps the loss near L_D(w*).
    """
    quiet = quiet or STATE.quiet
    with user_errors():
        check_output(out, "--out", folder=True)
        beta = check_beta(beta)
        scale = parse_prior_scale(prior_scale)
        beta_list = parse_betas(betas)
        if resume is not None:
            _check_resume(method, beta_list)
            check_output(resume, "--resume", folder=False)
        ck, ds, name, dseed, _ = load_source(src, quiet=quiet)
        loss = loss or (ck.meta.get("train_config") or {}).get("loss") or "cross_entropy"
        try:
            m = compute_measure(
                ck,
                ds,
                beta=beta,
                betas=beta_list,
                prior_scale=scale,
                prior_mean=prior_mean,
                method=method,
                structure=structure,
                curvature=curvature,
                loss=loss,
                n_samples=n_samples,
                mc_samples=mc_samples,
                seed=seed,
                batch_size=batch_size,
                quiet=quiet,
                state_path=resume,
            )
        except NotImplementedError as e:
            fail(str(e))
        except KeyboardInterrupt:
            if resume is not None:
                info(f"interrupted; the same command with --resume {resume} continues", quiet)
            raise
        check_finite(m, beta=beta, prior_scale=scale, mc_samples=mc_samples)
        print_measure(m)
        arch = ck.meta.get("architecture", {})
        title = f"{arch.get('name', 'model')} {arch.get('kwargs', {})} on {name}"
        act = _activations_section(ck, ds, m, name, seed, quiet) if activations else None
        from .._base import distributed as dist

        if not dist.is_main():  # under torchrun only rank 0 writes
            return
        with all_or_nothing(out) as stage:
            names = [p.name for p in write_measure(m, stage, title=title)]
            if act is not None:
                from ..report import write_json_atomic

                names.append(write_json_atomic(stage / "activations.json", act).name)
        for n in names:
            info(f"wrote {Path(out) / n}", quiet)
        if tensorboard is not None:
            from ..integrations.tensorboard import write_measurement

            info(
                f"wrote {write_measurement(tensorboard, m.result, png=Path(out) / 'where.png')}",
                quiet,
            )


def _activations_section(ck, ds, m: Measurement, name: str, seed: int, quiet: bool) -> dict:
    """``--activations``: I_eff and the translate-x Fisher per layer under Q*, printed and returned."""
    from .activations import default_layers, measure_activations, print_activations

    model = ck.model.eval()
    layers = default_layers(model)
    n = min(64, int(ds.n_test))
    nuisances = ["translate-x"] if len(ds.input_shape) == 3 else ["brightness"]
    eff, fishers = measure_activations(
        model,
        (ds.x_test[:n], ds.y_test[:n]),
        m.result,
        layers,
        nuisances,
        activation_variance=1e-4,
        jitter=1e-3,
        seed=seed,
        quiet=quiet,
    )
    say("")
    say("activations (noise of Q*; `weightinfo activations` for more nuisances and options):")
    print_activations(eff, fishers, m.result, name)
    return {
        "layers": layers,
        "n_inputs": n,
        "activation_variance": 1e-4,
        "jitter": 1e-3,
        "effective_information": eff.to_dict(),
        "activation_fisher": {k: a.to_dict() for k, a in fishers.items()},
    }
