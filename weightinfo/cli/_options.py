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
from typing import Annotated, Literal

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
EpochsOpt = Annotated[
    int | None, typer.Option(min=1, help="Training epochs (default: per dataset).")
]
LrOpt = Annotated[float | None, typer.Option(help="Learning rate (default: per dataset).")]
OptimizerOpt = Annotated[
    Literal["sgd", "adam"] | None, typer.Option(help="Optimizer (default: per dataset).")
]
DataSeedOpt = Annotated[int, typer.Option(help="Seed of the dataset's train/test split.")]
# For commands that take --checkpoint or train a model on the fly (model_and_data):
TrainBatchSizeOpt = Annotated[
    int | None, typer.Option(min=1, help="Training batch size (no --checkpoint).")
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
