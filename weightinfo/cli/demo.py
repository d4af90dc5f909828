"""``weightinfo demo``: train (or load) an MLP on digits and measure where its information is.

Trains :data:`DEMO_CONFIG` (the defaults of ``weightinfo fisher/measure --dataset digits``, so all
share one cached checkpoint) and runs ``weightinfo measure`` with its defaults on the training set
(β = 1e-6 per sample, λ = 0.1, prior mean = initial weights; exact diagonal Fisher, computed once)
plus the loss-vs-information curve at :data:`~weightinfo.cli.measure.DEMO_BETAS`; prints the
per-layer table, the curve and :data:`DEMO_EXPLANATION`. With ``--out DIR`` it writes
``report.json``, ``where.png``, ``curve.json``, ``curve.png`` and (the curvature behind them)
``fisher.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    STATE,
    TRAIN_DEFAULTS,
    Quiet,
    TrainDefaults,
    all_or_nothing,
    cached_train,
    check_output,
    fmt_acc,
    info,
    load_data,
    say,
    user_errors,
)
from .fisher import fisher_payload
from .measure import (
    DEFAULT_BETA,
    DEFAULT_PRIOR_SCALE,
    DEMO_BETAS,
    compute_measure,
    print_measure,
    write_measure,
)

#: What ``weightinfo demo`` trains: the defaults of ``weightinfo fisher --dataset digits``, so
#: both share one cached checkpoint.
DEMO_CONFIG: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "model_kwargs": {"widths": [256, 256]},
    **TRAIN_DEFAULTS["digits"]._asdict(),
    "seed": 0,
}

DEMO_EXPLANATION = (
    "What the numbers mean. IW = KL(Q*||P) is the information in the weights (Achille, Paolini & "
    "Soatto 2019), in nats: the length of a code for the trained weights w*, stored only to the "
    "precision the training loss demands. P = N(w0, lambda^2 I) is a code fixed before training "
    "(w0 = initial weights; lambda = 0.1, the range a weight is stored in); Q* = N(w*, Sigma*) "
    "minimises C_beta = E_Q[L_D] + beta*KL(Q||P), with L_D the mean cross-entropy per training "
    "sample and beta the loss per sample one is willing to pay to save one nat (beta*N for a summed "
    "loss). A weight costs (w - w0)^2/(2 lambda^2) (the mean term: how far training moved it) plus "
    "about 1/2 ln(lambda^2 F_ii/beta) if the Fisher F_ii pins it down, ~0 if the predictions ignore "
    "it. 'share %' is where the information is, 'nats/param' how dense it is. E_Q[L_D] is the loss "
    "of networks drawn from Q*; the curve shows the trade-off: larger beta, fewer nats, more loss. "
    "Compare IW across layers, networks or datasets at the same beta and lambda; its absolute value "
    "depends on both."
)


def demo(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder to also write report.json, where.png, curve.json, curve.png and "
            "fisher.json to.",
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Train (or load) an MLP on digits and measure where the information in its weights is."""
    quiet = quiet or STATE.quiet
    with user_errors():
        if out is not None:
            check_output(out, "--out", folder=True)
        c = DEMO_CONFIG
        t0 = time.perf_counter()
        ds = load_data(c["dataset"], seed=0, root=None, download=False)
        settings = TrainDefaults(c["epochs"], c["lr"], c["optimizer"], c["batch_size"])
        ck, cached = cached_train(
            c["dataset"],
            c["model"],
            c["model_kwargs"],
            settings,
            seed=c["seed"],
            data_seed=0,
            data_root=None,
            download=False,
            quiet=quiet,
        )
        m = ck.metrics
        say(
            f"weightinfo demo: {c['model']} {c['model_kwargs']} trained on {ds.describe()}; "
            f"{c['epochs']} epochs of {c['optimizer']}, seed {c['seed']}"
            f"{' (cached checkpoint)' if cached else ''}"
        )
        say(
            f"train accuracy {fmt_acc(m.get('train_accuracy'))}, "
            f"test accuracy {fmt_acc(m.get('test_accuracy'))}"
        )
        say()
        meas = compute_measure(
            ck,
            ds,
            beta=DEFAULT_BETA,
            betas=list(DEMO_BETAS),
            prior_scale=float(DEFAULT_PRIOR_SCALE),
            prior_mean=None,
            method="fisher",
            structure="diag",
            curvature="fisher",
            loss="cross_entropy",
            n_samples=None,
            mc_samples=8,
            seed=0,
            batch_size=256,
            quiet=quiet,
        )
        F = meas.curvature
        print_measure(meas)
        say(
            f"curvature used: exact diagonal Fisher, total trace {F.trace():.6g} (mean over "
            f"N={F.n_samples} samples, {F.n_params:,} parameters); `weightinfo fisher` shows it per layer"
        )
        say()
        say(DEMO_EXPLANATION, wrap=True)
        if out is not None:
            from ..report import write_json_atomic

            options = {
                **c,
                "checkpoint": str(ck.path),
                "cache_hit": cached,
                "kind": "exact",
                "structure": "diag",
                "loss": "cross_entropy",
                "n_samples": F.n_samples,
                "measure": meas.options,
            }
            title = f"{c['model']} {c['model_kwargs']} on {c['dataset']}"
            with all_or_nothing(out) as stage:
                paths = write_measure(meas, stage, title=title)
                payload = fisher_payload("demo", options, ck.meta, F, meas.elapsed)
                paths.append(write_json_atomic(stage / "fisher.json", payload))
            for p in paths:
                info(f"wrote {Path(out) / p.name}", quiet)
        info(f"demo finished in {time.perf_counter() - t0:.1f} s", quiet)
