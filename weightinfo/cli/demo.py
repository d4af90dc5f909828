"""``weightinfo demo``: train (or load) an MLP on digits and explain its per-layer Fisher.

Trains :data:`DEMO_CONFIG` (the defaults of ``weightinfo fisher --dataset digits``, so both share
one cached checkpoint), computes its exact diagonal Fisher on the training set, prints the table
and :data:`DEMO_EXPLANATION`, and with ``--out DIR`` writes ``DIR/fisher.json``.
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
    cached_train,
    fmt_acc,
    info,
    load_data,
    say,
    user_errors,
)
from .fisher import compute_fisher, fisher_payload, print_fisher

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
    "What the numbers mean. The Fisher information F = (1/N) sum_i E_y~p_w(y|x_i)[g g^T], with "
    "g = grad_w log p_w(y|x_i), measures how much the network's predictions change when its "
    "weights move: for a small perturbation d, KL(p_w || p_w+d) = 1/2 d^T F d nats. 'exact' takes "
    "the expectation over every class y under the model's own predictions (not the data labels), "
    "and F is a mean over the N training samples, not a sum. Each row sums the diagonal F_kk over "
    "one layer's weights: 'trace' is that sum, 'share %' the layer's part of the total trace and "
    "'mean' the trace per weight. These are curvatures (nats per squared weight unit), not "
    "amounts of information in nats; they turn into information only through the log-determinant "
    "of F against a prior. In the paper's terms, the information in the weights sits where the "
    "Fisher is large: layers with a large share hold the weights the training data pinned down "
    "most, whose small perturbations would change the predictions most."
)


def demo(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder to also write fisher.json to.")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Train (or load) an MLP on digits and explain its per-layer Fisher information."""
    quiet = quiet or STATE.quiet
    with user_errors():
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
        F, elapsed = compute_fisher(
            ck,
            ds,
            kind="exact",
            structure="diag",
            loss="cross_entropy",
            mc_samples=1,
            seed=0,
            batch_size=256,
            n_samples=None,
            quiet=quiet,
        )
        print_fisher(F, elapsed)
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
            }
            path = write_json_atomic(
                Path(out) / "fisher.json", fisher_payload("demo", options, ck.meta, F, elapsed)
            )
            info(f"wrote {path}", quiet)
        info(f"demo finished in {time.perf_counter() - t0:.1f} s", quiet)
