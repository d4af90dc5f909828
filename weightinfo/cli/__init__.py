"""Command line interface: ``weightinfo train | track | fisher | measure | certify | activations | report | demo | ...``.

* ``weightinfo train --dataset D [--model M] --out run.pt``: train a reference network (seeded)
  and write a checkpoint (``run.pt`` + metadata ``run.json``, see :mod:`weightinfo.checkpoint`).
* ``weightinfo track --dataset D --out run.pt``: the same, tracking tr F, per-layer tr F, loss, accuracy
  and η/B every epoch (``train --track``): ``track.jsonl`` and ``track.png`` next to the checkpoint.
* ``weightinfo fisher --dataset D [--checkpoint run.pt] [--json out.json]``: per-layer Fisher of
  a checkpoint, or of a model trained on the fly and cached (:func:`weightinfo.train_or_load`).
* ``weightinfo demo [--out DIR]``: MLP on the bundled ``digits`` set and its exact diagonal
  Fisher per layer, with an explanation of the numbers.
* ``weightinfo report RUN_DIR [RUN_DIR ...] --out report.html``: one self-contained HTML page of what
  the runs measured (:mod:`weightinfo.report.html`), side by side for several folders.
* ``weightinfo datasets`` / ``weightinfo models``: what can be used here.

Results go to stdout; status messages and progress bars to stderr (``--quiet`` silences them).
Errors (unknown names, missing files, invalid settings) print one red line ``error: ...`` on
stderr and exit with code 2 (``--debug`` shows the traceback instead). The global flags
``--quiet``, ``--plain`` and ``--debug`` may stand before or after the sub-command.
Under ``torchrun`` (``torchrun --nproc-per-node 2 -m weightinfo fisher|measure ...``: ``WORLD_SIZE`` > 1 in
the environment) ``main`` joins a gloo process group: every rank loads the data set and takes its contiguous
share of the training rows (:func:`weightinfo._base.distributed.shard_bounds`), the quantities are reduced
over ranks (results for all the rows, identical on every rank), and only rank 0 prints, trains and caches a
missing checkpoint, and writes files; the other ranks' stdout is discarded and their status lines silenced.
Output locations (``--out``, ``--json``) are checked before any work, and a results folder is
written completely or not at all (:func:`._common.check_output`, :func:`._common.all_or_nothing`).

Without ``--model`` the model suggested for the dataset is used
(:func:`weightinfo.models.default_model_for`, e.g. an MLP with widths 256,256 for ``digits``),
and its suggested kwargs also apply when the same model is named explicitly (explicit ``--widths``
etc. override them). Unset training options take per-dataset defaults (:data:`TRAIN_DEFAULTS`).

Layout: this module holds the app, its global options and ``main``; one module per command
group (:mod:`.train`, :mod:`.fisher`, :mod:`.demo`, :mod:`.catalog` for ``datasets`` /
``models``), :mod:`._options` for the options they share (each declared once; the model/data
group :class:`._options.ModelSource`) and :mod:`._common` for the rest they share (option parsing,
errors, output, model and data resolution).

JSON written by ``fisher --json`` and ``demo --out`` (strict JSON: NaN/inf become ``null``)::

    {
      "command":    {"name": "fisher" | "demo", "options": {...resolved options...,
                     "checkpoint": path or null, "dataset", "n_samples"}, "time_s": seconds},
      "checkpoint": the checkpoint metadata (architecture, dataset, train_config, seed, metrics,
                    ...; for on-the-fly training also config, config_hash), as in ``run.json``,
      "fisher":     Curvature.to_dict(): quantity, kind, structure, loss, normalisation,
                    n_samples, n_params, mc_samples, seed, trace and per_layer rows
                    {layer, type, n_params, trace, share, mean} whose traces sum to trace.
    }
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Annotated

import typer
from typer.core import TyperGroup

from .. import __version__
from . import activations, catalog, certify, demo, fisher, measure, report, reproduce, train
from ._common import STATE, TRAIN_DEFAULTS, Quiet, hoist_global_flags
from .demo import DEMO_CONFIG

__all__ = ["TRAIN_DEFAULTS", "DEMO_CONFIG", "app", "main"]

HELP = (
    "Where is the information in a trained network (Achille, Paolini & Soatto 2019): "
    "train reference networks and measure the Fisher information of their weights, per layer."
)


class _Group(TyperGroup):
    """The root command group: global flags are accepted after the sub-command too."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_flags(args))


app = typer.Typer(
    name="weightinfo",
    cls=_Group,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        import torch

        typer.echo(f"weightinfo {__version__} (torch {torch.__version__})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    quiet: Quiet = False,
    plain: Annotated[
        bool, typer.Option("--plain", help="Plain-text tables (no colours or box drawing).")
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show tracebacks instead of one-line errors (also after the sub-command).",
        ),
    ] = False,
) -> None:
    from .._base import distributed as dist

    STATE.quiet, STATE.plain, STATE.debug = quiet or not dist.is_main(), plain, debug


# Commands, in the order ``--help`` lists them.
app.command(name="train")(train.train)
app.command(name="track")(train.track)
app.command(name="fisher")(fisher.fisher_cmd)
app.command(name="measure")(measure.measure_cmd)
app.command(name="certify")(certify.certify_cmd)
app.command(name="activations")(activations.activations_cmd)
app.command(name="report")(report.report_cmd)
app.command(name="demo")(demo.demo)
app.command(name="datasets")(catalog.datasets)
app.command(name="models")(catalog.models)
app.add_typer(reproduce.app, name="reproduce")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``weightinfo``); ``argv`` (default: ``sys.argv[1:]``) are the words
    after ``weightinfo``, e.g. ``main(["reproduce", "certificates", "--which", "digits"])``."""
    with _process_group():
        app(args=argv, prog_name="weightinfo")


@contextlib.contextmanager
def _process_group() -> Iterator[None]:
    """Under torchrun (``WORLD_SIZE`` > 1, no group yet): a gloo group for the command; stdout of ranks > 0
    goes to /dev/null (only rank 0 prints)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield
        return
    import torch.distributed as tdist

    if not tdist.is_available() or tdist.is_initialized():
        yield
        return
    tdist.init_process_group("gloo")
    try:
        if tdist.get_rank() == 0:
            yield
        else:
            with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
                yield
    finally:
        with contextlib.suppress(Exception):
            tdist.destroy_process_group()
        sys.stdout.flush()
