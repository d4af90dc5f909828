"""Training a checkpoint from a specification: :class:`TrainSpec` → :func:`train_checkpoint`."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .._base.jsonable import to_jsonable
from ..models import build_model
from ..training import evaluate, train
from .files import save_checkpoint

__all__ = ["TrainSpec", "TrainedRun", "load_training_data", "train_checkpoint"]


# --------------------------------------------------------------------------------------------
# Training into a checkpoint
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TrainSpec:
    """Everything that determines a trained network's weights: the arguments of
    :func:`train_or_load` (fields in the order of its cache key), ``label_noise_seed=None`` meaning
    the training ``seed``."""

    dataset: str
    data_seed: int = 0
    model: str
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    epochs: int
    lr: float
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str | None = None
    gamma: float | None = None
    step_size: int | None = None
    loss: str = "cross_entropy"
    batch_size: int = 128
    seed: int = 0
    label_noise: float = 0.0
    label_noise_seed: int | None = None

    @property
    def noise_seed(self) -> int:
        """Seed of the label corruption: ``label_noise_seed``, else ``seed``."""
        return self.seed if self.label_noise_seed is None else int(self.label_noise_seed)

    def cache_config(self) -> dict[str, Any]:
        """The fields as JSON-ready values; the label-noise fields only when ``label_noise`` is
        non-zero, so that clean runs hash as they did before label noise was an option."""
        config = {f.name: getattr(self, f.name) for f in fields(self)}
        config["model_kwargs"] = to_jsonable(dict(self.model_kwargs), "model_kwargs")
        del config["label_noise"], config["label_noise_seed"]
        if self.label_noise:
            config.update(label_noise=self.label_noise, label_noise_seed=self.noise_seed)
        return config


class TrainedRun(NamedTuple):
    """What :func:`train_checkpoint` wrote: checkpoint ``path``, the dataset trained on, the
    :class:`~weightinfo.training.TrainResult` and the recorded ``metrics``."""

    path: Path
    dataset: Any
    result: Any
    metrics: dict[str, Any]


def _load_dataset(name: str, **kwargs: Any):
    """``weightinfo.data.load_dataset``, imported lazily (tests substitute this function)."""
    from weightinfo.data import load_dataset

    return load_dataset(name, **kwargs)


def load_training_data(
    dataset: str,
    *,
    data_seed: int = 0,
    label_noise: float = 0.0,
    label_noise_seed: int = 0,
    root: str | os.PathLike | None = None,
    download: bool = False,
):
    """Dataset ``dataset`` split with ``data_seed``; with non-zero ``label_noise``, that fraction
    of its training labels made random (:func:`weightinfo.data.corrupt_labels` seeded with
    ``label_noise_seed``, recorded in ``info['label_noise']``)."""
    ds = _load_dataset(dataset, root=root, download=download, seed=data_seed)
    if label_noise:
        from weightinfo.data import corrupt_labels

        ds = corrupt_labels(ds, label_noise, seed=label_noise_seed)
    return ds


def train_checkpoint(
    path: str | os.PathLike,
    spec: TrainSpec,
    *,
    ds: Any = None,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    evaluate_train: bool = False,
    dataset_extra: Mapping[str, Any] | None = None,
    train_config_extra: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    created_by: str | None = None,
    progress: bool = False,
    device: str | torch.device | None = None,
    callbacks: Sequence[object] = (),
) -> TrainedRun:
    """Train ``spec`` from scratch and save it with its initial weights as checkpoint ``path``.

    ``ds`` is the dataset (default: :func:`load_training_data` for ``spec``, from ``data_root``).
    The model is built after ``torch.manual_seed(spec.seed)`` and trained with
    :func:`weightinfo.training.train` on ``ds.train_loader(spec.batch_size, seed=spec.seed)``,
    evaluating the test set each epoch. ``metrics`` holds the test loss and accuracy and the last
    epoch's running ``train_loss`` / ``train_accuracy``; with ``evaluate_train`` those two come
    from the final model on the whole training set and the running values are kept as
    ``last_epoch_train_*``. A non-zero ``spec.label_noise`` is recorded in ``train_config``.
    ``dataset_extra`` and ``train_config_extra`` add fields to those metadata sections, ``extra``
    top-level fields (before ``history``, the per-epoch records), ``created_by`` one after it.
    Shared by :func:`train_or_load` and ``weightinfo train``. ``callbacks`` go to ``train`` (e.g. a
    :class:`weightinfo.Tracker`; ``weightinfo train --track``).
    """
    if ds is None:
        ds = load_training_data(
            spec.dataset,
            data_seed=spec.data_seed,
            label_noise=spec.label_noise,
            label_noise_seed=spec.noise_seed,
            root=data_root,
            download=download,
        )
    kwargs = to_jsonable(dict(spec.model_kwargs), "model_kwargs")
    shape, n_classes = tuple(ds.input_shape), int(ds.n_classes)
    arch = {
        "name": spec.model,
        "kwargs": kwargs,
        "input_shape": list(shape),
        "n_classes": n_classes,
    }
    torch.manual_seed(spec.seed)
    net = build_model(spec.model, shape, n_classes, **kwargs)
    init_state = copy.deepcopy(net.state_dict())
    test_loader = ds.test_loader()
    result = train(
        net,
        ds.train_loader(batch_size=spec.batch_size, shuffle=True, seed=spec.seed),
        epochs=spec.epochs,
        lr=spec.lr,
        optimizer=spec.optimizer,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        schedule=spec.schedule,
        gamma=spec.gamma,
        step_size=spec.step_size,
        loss=spec.loss,
        seed=spec.seed,
        eval_loader=test_loader,
        progress=progress,
        device=device,
        callbacks=callbacks,
    )
    test = evaluate(net, test_loader, spec.loss)
    last = {k: result.final[k] for k in ("train_loss", "train_accuracy")}
    metrics = {**last, "test_loss": test["loss"], "test_accuracy": test["accuracy"]}
    if evaluate_train:
        on_train = evaluate(net, ds.train_loader(batch_size=512, shuffle=False), spec.loss)
        metrics.update(train_loss=on_train["loss"], train_accuracy=on_train["accuracy"])
        metrics.update({f"last_epoch_{k}": v for k, v in last.items()})
    metrics.update(epochs_run=result.epochs_run, steps=result.steps, train_time_s=result.total_time)
    ds_meta = ds.to_dict() if hasattr(ds, "to_dict") else {"name": spec.dataset}
    ds_meta = {**ds_meta, **(dataset_extra or {}), "data_seed": spec.data_seed}
    train_config = {**result.config, "batch_size": spec.batch_size}
    if spec.label_noise:
        train_config["label_noise"] = spec.label_noise
    save_checkpoint(
        path,
        net,
        arch=arch,
        dataset={**ds_meta, "train_split": "train", "eval_split": "test"},
        train_config={**train_config, **(train_config_extra or {})},
        seed=spec.seed,
        metrics=metrics,
        init_state_dict=init_state,
        extra={
            **(extra or {}),
            "history": result.history,
            **({} if created_by is None else {"created_by": created_by}),
        },
    )
    return TrainedRun(Path(path), ds, result, metrics)


# Cached training builds on the above; re-exported here, where it has always been importable.
