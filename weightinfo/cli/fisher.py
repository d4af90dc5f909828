"""``weightinfo fisher``: the per-layer Fisher information of a trained model on its training data.

The model comes from ``--checkpoint`` or is trained on the fly with the dataset's defaults and
cached (:func:`weightinfo.train_or_load`). The expectation over labels (``--kind``: exact, Monte
Carlo or empirical) and the matrix structure (``--structure``) are those of
:func:`weightinfo.fisher`. The table goes to stdout; ``--json`` also writes the result (schema in
:mod:`weightinfo.cli`). :func:`fisher_payload` is shared with ``weightinfo demo``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from ._common import (
    STATE,
    BatchSizeOpt,
    LikelihoodOpt,
    ModelSource,
    NSamplesOpt,
    Quiet,
    check_output,
    info,
    load_source,
    progress_enabled,
    say,
    stdout_console,
    training_data,
    user_errors,
)
from ._options import model_source_options


def compute_fisher(ck, ds, *, n_samples: int | None, quiet: bool, **settings):
    """The Fisher of checkpoint ``ck``'s model on the first ``n_samples`` training samples of
    ``ds`` (all by default), after checking that model and dataset fit: ``(F, seconds)``.
    ``settings``: the keywords of :func:`weightinfo.fisher` (kind, structure, loss, mc_samples, seed,
    batch_size)."""
    from .._base import distributed as dist
    from ..curvature import fisher

    x, y = training_data(ck, ds, loss=settings["loss"], n_samples=n_samples)
    n = dist.global_count(int(x.shape[0]))  # this rank's share under torchrun
    model = ck.model.eval()
    what = f"{settings['kind']} {settings['structure']} Fisher ({settings['loss']})"
    info(f"computing the {what} on {n} training samples", quiet)
    t0 = time.perf_counter()
    F = fisher(model, (x, y), **settings, progress=progress_enabled(quiet))
    return F, time.perf_counter() - t0


def print_fisher(F, elapsed: float) -> None:
    """The per-layer table and a line with the total trace, on stdout."""
    from ..report import print_layer_table

    table = F.per_layer()
    print_layer_table(table, console=stdout_console(), plain=STATE.plain)
    extra = f", {F.mc_samples} label draws per input, seed {F.seed}" if F.kind == "mc" else ""
    say(
        f"total trace {F.trace():.6g} ({F.label}, {F.kind}, {F.structure}, {F.loss}; mean over "
        f"N={F.n_samples} samples, {F.n_params:,} parameters{extra}); computed in {elapsed:.2f} s"
    )


def fisher_payload(name: str, options: dict, meta: dict, F, elapsed: float) -> dict:
    """The JSON written by ``fisher --json`` and ``demo --out``."""
    return {
        "command": {"name": name, "options": options, "time_s": elapsed},
        "checkpoint": meta,
        "fisher": F.to_dict(),
    }


@model_source_options
def fisher_cmd(
    *,
    src: ModelSource,
    kind: Annotated[
        Literal["exact", "mc", "empirical"], typer.Option(help="Expectation over labels.")
    ] = "exact",
    structure: Annotated[
        Literal["diag", "kfac", "full"], typer.Option(help="Matrix structure.")
    ] = "diag",
    loss: LikelihoodOpt = None,
    mc_samples: Annotated[int, typer.Option(min=1, help="Labels drawn per input (--kind mc).")] = 1,
    n_samples: NSamplesOpt = None,
    batch_size: BatchSizeOpt = 256,
    seed: Annotated[int, typer.Option(help="Seed of the label draws (--kind mc).")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the result as JSON (atomic).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Per-layer Fisher information of a trained model on its training data.

    Convention: the mean over the N training samples, in nats,
    F = (1/N) Σ_i E_{y∼p_w(y|x_i)}[∇_w ℓ_i ∇_w ℓ_iᵀ] with ℓ_i = −ln p_w(y|x_i),
    i.e. the Fisher of the mean per-sample loss (N·F is that of the summed loss). --kind exact takes
    the expectation over y in closed form, mc draws --mc-samples labels per input, empirical uses the
    observed label. Traces and per-layer rows sum the diagonal of F over each layer's parameters.
    """
    quiet = quiet or STATE.quiet
    with user_errors():
        if json_out is not None:
            check_output(json_out, "--json", folder=False)
        ck, ds, name, dseed, cached = load_source(src, quiet=quiet)
        loss = loss or (ck.meta.get("train_config") or {}).get("loss") or "cross_entropy"
        settings = {
            "kind": kind,
            "structure": structure,
            "loss": loss,
            "mc_samples": mc_samples,
            "batch_size": batch_size,
            "seed": seed,
        }
        F, elapsed = compute_fisher(ck, ds, n_samples=n_samples, quiet=quiet, **settings)
        print_fisher(F, elapsed)
        from .._base import distributed as dist

        if json_out is not None and dist.is_main():  # under torchrun only rank 0 writes
            from ..report import write_json_atomic

            options = {
                "dataset": name,
                "data_seed": dseed,
                "checkpoint": str(ck.path),
                "checkpoint_given": src.checkpoint is not None,
                "cache_hit": cached,
                **settings,
                "n_samples": F.n_samples,
            }
            write_json_atomic(json_out, fisher_payload("fisher", options, ck.meta, F, elapsed))
            info(f"wrote {json_out}", quiet)
