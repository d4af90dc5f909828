"""The command-line options shared by commands, each declared once.

* Single options as ``Annotated`` aliases (``DatasetOpt``, ``CheckpointOpt``, ``Quiet``, ...): a command
  declares ``dataset: DatasetOpt = None`` and gets the flag, its help and its checks.
* :class:`ModelSource`, the group of options saying where the trained model comes from (a checkpoint, or a
  model trained on the fly and cached) and on which data: :func:`model_source_options` adds them all to a
  command (``fisher``, ``measure``), which receives them as one ``src: ModelSource`` argument.

Imports only typer (``--help`` stays fast).
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

import typer

Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bars or status messages (stderr).")
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset", "-d", help="Dataset name (see `weightinfo datasets`).", show_default=False
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model name (see `weightinfo models`); default: suggested for dataset.",
    ),
]
WidthsOpt = Annotated[
    str | None,
    typer.Option(help="mlp hidden widths, comma-separated, e.g. 256,256 ('' for none)."),
]
WidthOpt = Annotated[float | None, typer.Option(help="Width multiplier of allcnn / resnet18.")]
ModelArgOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--model-arg",
        help="Extra model keyword KEY=VALUE (repeatable); VALUE parsed as JSON or a comma list.",
    ),
]


class TrainDefaults(NamedTuple):
    """Training settings used when the corresponding option is not given."""

    epochs: int
    lr: float
    optimizer: str
    batch_size: int


#: Per-dataset training defaults (key: dataset name without ``binary-``; MNIST variants as mnist).
TRAIN_DEFAULTS: dict[str, TrainDefaults] = {
    "digits": TrainDefaults(epochs=20, lr=0.05, optimizer="sgd", batch_size=128),
    "mnist1d": TrainDefaults(epochs=50, lr=1e-3, optimizer="adam", batch_size=128),
    "two-moons": TrainDefaults(epochs=30, lr=0.1, optimizer="sgd", batch_size=128),
    "mnist": TrainDefaults(epochs=5, lr=0.01, optimizer="sgd", batch_size=128),
    "fashion-mnist": TrainDefaults(epochs=5, lr=0.01, optimizer="sgd", batch_size=128),
}
_FALLBACK_TRAIN = TrainDefaults(epochs=10, lr=0.01, optimizer="sgd", batch_size=128)


def _defaults_help(what: str, field: str) -> str:
    """``what`` followed by the per-dataset defaults of ``field`` from :data:`TRAIN_DEFAULTS`."""
    values = {name: getattr(d, field) for name, d in TRAIN_DEFAULTS.items()}
    other = getattr(_FALLBACK_TRAIN, field)
    if set(values.values()) == {other}:
        return f"{what} (default: {other:g})."
    listed = ", ".join(
        f"{name} {v:g}" if not isinstance(v, str) else f"{name} {v}" for name, v in values.items()
    )
    other = other if isinstance(other, str) else f"{other:g}"
    return f"{what} (default per dataset: {listed}; other datasets {other})."


EpochsOpt = Annotated[
    int | None, typer.Option(min=1, help=_defaults_help("Training epochs", "epochs"))
]
LrOpt = Annotated[float | None, typer.Option(help=_defaults_help("Learning rate", "lr"))]
OptimizerOpt = Annotated[
    Literal["sgd", "adam"] | None, typer.Option(help=_defaults_help("Optimizer", "optimizer"))
]
DataSeedOpt = Annotated[int, typer.Option(help="Seed of the dataset's train/test split.")]
# For commands that take --checkpoint or train a model on the fly (load_source):
TrainBatchSizeOpt = Annotated[
    int | None,
    typer.Option(min=1, help=_defaults_help("Training batch size (no --checkpoint)", "batch_size")),
]
TrainSeedOpt = Annotated[int, typer.Option(help="Training seed (no --checkpoint).")]
SplitSeedOpt = Annotated[
    int | None, typer.Option(help="Split seed (default: the checkpoint's, else 0).")
]
DataRootOpt = Annotated[
    Path | None, typer.Option(help="Folder searched first for file-backed datasets.")
]
DownloadOpt = Annotated[
    bool, typer.Option("--download", help="Download missing file-backed datasets (internet).")
]
LossOpt = Literal["cross_entropy", "bce_with_logits", "mse"]
TensorBoardOpt = Annotated[
    Path | None,
    typer.Option(
        "--tensorboard",
        help="Also write TensorBoard summaries (event files) to this folder "
        "(needs the tensorboard package).",
        show_default=False,
    ),
]
# The model/data options of the commands that measure a trained model (fisher, measure, certify):
CheckpointOpt = Annotated[
    Path | None,
    typer.Option("--checkpoint", "-c", help="Checkpoint to measure; else train (cached)."),
]
LikelihoodOpt = Annotated[
    LossOpt | None, typer.Option(help="Likelihood (default: the checkpoint's training loss).")
]
NSamplesOpt = Annotated[
    int | None, typer.Option(min=1, help="Use the first N training samples (default: all).")
]
BatchSizeOpt = Annotated[int, typer.Option(min=1, help="Batch size of the computation.")]


@dataclass(frozen=True)
class ModelSource:
    """Where the model to measure comes from, and its data (the options of :data:`MODEL_SOURCE_OPTIONS`).

    With ``checkpoint`` the model is loaded (dataset and split seed default to the recorded ones); else
    it is trained on the fly with the dataset's suggested model and training defaults, then cached.
    """

    dataset: str | None = None
    model: str | None = None
    checkpoint: Path | None = None
    widths: str | None = None
    width: float | None = None
    model_arg: list[str] | None = None
    epochs: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    train_batch_size: int | None = None
    train_seed: int = 0
    data_seed: int | None = None
    data_root: Path | None = None
    download: bool = False


#: The typer declaration of every :class:`ModelSource` field, in ``--help`` order.
MODEL_SOURCE_OPTIONS = {
    "dataset": DatasetOpt,
    "model": ModelOpt,
    "checkpoint": CheckpointOpt,
    "widths": WidthsOpt,
    "width": WidthOpt,
    "model_arg": ModelArgOpt,
    "epochs": EpochsOpt,
    "lr": LrOpt,
    "optimizer": OptimizerOpt,
    "train_batch_size": TrainBatchSizeOpt,
    "train_seed": TrainSeedOpt,
    "data_seed": SplitSeedOpt,
    "data_root": DataRootOpt,
    "download": DownloadOpt,
}


_KW = inspect.Parameter.KEYWORD_ONLY


def model_source_options(command):
    """Make ``command(..., src: ModelSource, ...)`` a typer command with the :class:`ModelSource` options.

    The returned function's signature has the options of :data:`MODEL_SOURCE_OPTIONS` where ``src``
    stood (typer reads the signature to build the command line); it packs their values into a
    :class:`ModelSource` and calls ``command`` with it.
    """
    hints = typing.get_type_hints(command, include_extras=True)
    defaults = {f.name: f.default for f in fields(ModelSource)}
    params = []
    for p in inspect.signature(command).parameters.values():
        if p.name != "src":
            params.append(p.replace(kind=_KW, annotation=hints[p.name]))
            continue
        for name, option in MODEL_SOURCE_OPTIONS.items():
            params.append(inspect.Parameter(name, _KW, default=defaults[name], annotation=option))
    if len(params) == len(inspect.signature(command).parameters):
        raise TypeError(f"{command.__name__} has no 'src' parameter")

    @functools.wraps(command)
    def with_options(**kwargs):
        src = ModelSource(**{k: kwargs.pop(k) for k in MODEL_SOURCE_OPTIONS})
        return command(src=src, **kwargs)

    del with_options.__wrapped__  # typer must see the new signature, not the wrapped one
    with_options.__signature__ = inspect.Signature(params)
    with_options.__annotations__ = {p.name: p.annotation for p in params}
    return with_options
