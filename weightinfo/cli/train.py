"""``weightinfo train``: train a reference network (seeded) and write a checkpoint.

Writes ``--out`` (e.g. ``run.pt``) and its metadata ``run.json`` (:mod:`weightinfo.checkpoint`)
through :func:`weightinfo.checkpoint.train_checkpoint`, the code path :func:`weightinfo.train_or_load`
caches. Unset model options take the dataset's suggestion and unset training options its defaults
(:data:`~weightinfo.cli._common.TRAIN_DEFAULTS`). ``--label-noise`` makes that fraction of the
training labels random, seeded with ``--seed``. Beyond the cached runs, the metadata records the
requested dataset name, the options as ``config``, ``created_by`` and the final model's accuracy on
the whole training set (the last epoch's running values as ``last_epoch_train_*``).

``--track trace,logdet,...`` attaches a :class:`weightinfo.Tracker` (quantities of
:data:`weightinfo.dynamics.tracker.QUANTITIES`) on the first ``--track-probe`` training images, with the
test set as ``test_data``: it writes ``track.jsonl`` (one record per epoch, as training goes; an existing
file there is replaced) and ``track.png`` next to the checkpoint (one panel per quantity against the epoch,
the command in its title). ``information`` needs ``--track-beta`` and ``--track-prior-scale``.

``--tensorboard DIR`` (with ``--track``) also writes every record's measured numbers as TensorBoard scalars
``weightinfo/<quantity>`` at global step = epoch (:mod:`weightinfo.integrations.tensorboard`).

``weightinfo track`` is ``weightinfo train`` with tracking on: the same options, ``--track`` defaulting to
the tracker's default quantities (:data:`weightinfo.dynamics.tracker.DEFAULT_QUANTITIES`: trace,
layer_trace, loss, accuracy, temperature). ``train`` saves the final weights only, so the records are
taken during training, not from saved checkpoints.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer

from ._common import (
    STATE,
    DataRootOpt,
    DataSeedOpt,
    DatasetOpt,
    DownloadOpt,
    EpochsOpt,
    LossOpt,
    LrOpt,
    ModelArgOpt,
    ModelOpt,
    OptimizerOpt,
    Quiet,
    WidthOpt,
    WidthsOpt,
    all_or_nothing,
    check_output,
    command_line,
    fmt_acc,
    info,
    model_kwargs,
    progress_enabled,
    resolve_model,
    say,
    train_settings,
    user_errors,
)
from ._options import TensorBoardOpt, _defaults_help

# weightinfo.dynamics.tracker.DEFAULT_QUANTITIES (not imported here: the CLI loads torch only when it runs)
TRACK_DEFAULT = "trace,layer_trace,loss,accuracy,temperature"

_BatchSizeOpt = Annotated[
    int | None, typer.Option(min=1, help=_defaults_help("Mini-batch size", "batch_size"))
]


def train(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Checkpoint file to write (e.g. run.pt).")
    ],
    dataset: DatasetOpt = None,
    model: ModelOpt = None,
    widths: WidthsOpt = None,
    width: WidthOpt = None,
    model_arg: ModelArgOpt = None,
    epochs: EpochsOpt = None,
    lr: LrOpt = None,
    optimizer: OptimizerOpt = None,
    batch_size: _BatchSizeOpt = None,
    momentum: Annotated[float, typer.Option(help="SGD momentum, in [0, 1).")] = 0.9,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay.")] = 0.0,
    schedule: Annotated[
        Literal["none", "cosine", "step", "exponential"],
        typer.Option(help="Learning-rate schedule."),
    ] = "none",
    loss: Annotated[
        LossOpt,
        typer.Option(
            help="Training loss, the likelihood that measure/fisher/certify then use: "
            "cross_entropy; bce_with_logits (independent Bernoulli per output) or mse "
            "(½‖y − f(x)‖², unit-variance Gaussian), each on one-hot class labels."
        ),
    ] = "cross_entropy",
    seed: Annotated[int, typer.Option(help="Seed of initialisation and data order.")] = 0,
    label_noise: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Fraction of training labels made random.")
    ] = 0.0,
    data_seed: DataSeedOpt = 0,
    data_root: DataRootOpt = None,
    download: DownloadOpt = False,
    track: Annotated[
        str | None,
        typer.Option(
            help="Track quantities every epoch (comma list: trace, layer_trace, logdet, information, "
            "loss, accuracy, temperature, gradient_noise); writes track.jsonl and track.png next to "
            "the checkpoint."
        ),
    ] = None,
    track_probe: Annotated[
        int, typer.Option(min=1, help="Training images in the tracker's fixed probe set.")
    ] = 500,
    track_beta: Annotated[
        float | None, typer.Option(help="β (per sample) of the tracked 'information'.")
    ] = None,
    track_prior_scale: Annotated[
        float | None, typer.Option(help="Prior scale λ of the tracked 'information'.")
    ] = None,
    tensorboard: TensorBoardOpt = None,
    quiet: Quiet = False,
) -> None:
    """Train a reference network (seeded) and write a checkpoint with its metadata."""
    quiet = quiet or STATE.quiet
    with user_errors():
        from ..checkpoint import TrainSpec, load_training_data, metadata_path, train_checkpoint

        if dataset is None:
            raise ValueError("--dataset is required (see `weightinfo datasets`)")
        if tensorboard is not None and track is None:
            raise ValueError(
                "--tensorboard writes the tracked quantities: add --track (or use `weightinfo track`)"
            )
        json_path = metadata_path(out)
        check_output(out, "--out", folder=False)
        ds = load_training_data(
            dataset,
            data_seed=data_seed,
            label_noise=label_noise,
            label_noise_seed=seed,
            root=data_root,
            download=download,
        )
        name, kwargs = resolve_model(dataset, model, model_kwargs(widths, width, model_arg))
        s = train_settings(dataset, epochs, lr, optimizer, batch_size)
        sched = None if schedule == "none" else schedule
        config = {
            "dataset": dataset,
            "data_seed": data_seed,
            "model": name,
            "model_kwargs": kwargs,
            **s._asdict(),
            "momentum": momentum,
            "weight_decay": weight_decay,
            "schedule": sched,
            "loss": loss,
            "seed": seed,
            "label_noise": label_noise,
        }
        spec = TrainSpec(**config, label_noise_seed=seed)
        tracker = None
        if track is not None:
            from ..dynamics import Tracker

            track_path = Path(out).parent / "track.jsonl"
            # The records are written as training goes, so their folder must exist from the start (the
            # checkpoint's own files still land all together, moved into it at the end).
            track_path.parent.mkdir(parents=True, exist_ok=True)
            tracker = Tracker(
                (ds.x_train[:track_probe], ds.y_train[:track_probe]),
                quantities=track,
                test_data=(ds.x_test, ds.y_test),
                beta=track_beta,
                prior_scale=track_prior_scale,
                loss=loss,
                batch_size=s.batch_size,
                path=track_path,
                tensorboard=tensorboard,
            )
            track_path.unlink(missing_ok=True)
        info(
            f"training {name} {kwargs} on {ds.describe()}: {s.epochs} epochs, {s.optimizer}, "
            f"lr {s.lr:g}, batch {s.batch_size}, seed {seed}",
            quiet,
        )
        # The checkpoint and its sidecar appear together (or neither does, on any error or Ctrl-C).
        with all_or_nothing(Path(out).parent) as stage, _closing(tracker):
            run = train_checkpoint(
                stage / Path(out).name,
                spec,
                ds=ds,
                evaluate_train=True,
                dataset_extra={"requested_name": dataset},
                train_config_extra={"label_noise": label_noise},
                extra={"config": config},
                created_by="weightinfo train",
                progress=progress_enabled(quiet),
                callbacks=() if tracker is None else (tracker,),
            )
        if tracker is not None:
            tracker.plot(Path(out).parent / "track.png", command=command_line(ctx))
    m = run.metrics
    say(
        f"trained {name} {kwargs} on {dataset}: {run.result.epochs_run} epochs in "
        f"{run.result.total_time:.2f} s"
    )
    say(f"  train accuracy {fmt_acc(m['train_accuracy'])}  (loss {m['train_loss']:.4g})")
    say(f"  test accuracy  {fmt_acc(m['test_accuracy'])}  (loss {m['test_loss']:.4g})")
    say(f"checkpoint {out}  (metadata {json_path})")
    if tracker is not None:
        say(
            f"tracked {', '.join(tracker.quantities)}: {track_path}, {track_path.with_suffix('.png')}"
        )


@contextmanager
def _closing(tracker):
    """Close the tracker's TensorBoard writer (if any) at the end, also on errors."""
    try:
        yield
    finally:
        if tracker is not None and tracker.tensorboard is not None:
            tracker.tensorboard.close()


def track(*args, **kwargs) -> None:
    """Train a reference network while tracking tr F, per-layer tr F, loss, accuracy and η/B every epoch.

    ``weightinfo train`` with ``--track`` on by default: writes the checkpoint, ``track.jsonl`` (one record
    per epoch) and ``track.png`` next to it.
    """
    train(*args, **kwargs)


_sig = inspect.signature(train, eval_str=True)
track.__signature__ = _sig.replace(
    parameters=[
        p.replace(default=TRACK_DEFAULT) if p.name == "track" else p
        for p in _sig.parameters.values()
    ]
)
track.__annotations__ = dict(train.__annotations__)
