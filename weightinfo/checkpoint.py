"""Checkpoints of trained reference networks, and cached training (``train_or_load``).

A checkpoint is two files written atomically (temporary file + ``os.replace``):

* ``PATH`` (e.g. ``run.pt``): ``torch.save`` of ``{"state_dict", "init_state_dict", "meta"}``;
  tensors on CPU. The initial weights are kept because later computations use them as the mean
  of a prior on the weights.
* ``PATH`` with suffix ``.json`` (``run.json``): the metadata ``meta`` as readable JSON:
  ``architecture`` (``name``, ``kwargs``, ``input_shape``, ``n_classes``: the arguments of
  :func:`weightinfo.models.build_model`), ``dataset``, ``train_config``, ``seed``, ``metrics``,
  ``n_parameters``, ``weightinfo_version``, ``torch_version``, ``created`` (UTC, ISO 8601) and an
  ``id`` shared with the copy embedded in ``PATH``.

:func:`train_checkpoint` trains a :class:`TrainSpec` (dataset, model, hyper-parameters, seeds,
label noise) from scratch and saves the result; ``weightinfo train`` uses it directly and
:func:`train_or_load` (defined in :mod:`weightinfo._cache`, re-exported here) caches it as
``<cache>/<config hash>.pt``, where ``<cache>`` is the ``cache_dir`` argument, else
``$WEIGHTINFO_CACHE``, else ``$XDG_CACHE_HOME/weightinfo/checkpoints`` (default
``~/.cache/weightinfo/checkpoints``). A later call with the same configuration loads that file
instead of training.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import os
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ._atomic import atomic_write
from .models import build_model, count_parameters
from .train import evaluate, train

__all__ = [
    "CACHE_ENV_VAR",
    "FORMAT_VERSION",
    "Checkpoint",
    "TrainSpec",
    "TrainedRun",
    "config_hash",
    "default_cache_dir",
    "load_checkpoint",
    "load_training_data",
    "metadata_path",
    "save_checkpoint",
    "to_jsonable",
    "train_checkpoint",
    "train_or_load",
]

FORMAT_VERSION = 1

StateDict = dict[str, torch.Tensor]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def metadata_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar of checkpoint ``path``: same name with suffix ``.json``."""
    p = Path(path)
    if p.suffix == ".json":
        raise ValueError(f"checkpoint path {str(p)!r} must not end in .json (used by the metadata)")
    return p.with_suffix(".json")


def to_jsonable(value: Any, where: str = "value") -> Any:
    """A JSON-ready copy of ``value``: tuples → lists, numpy/torch scalars → numbers, NaN/Inf →
    ``None``, paths → strings. Anything else unknown raises ``TypeError`` naming ``where``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):  # plain str, not a subclass such as torch's TorchVersion
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, torch.Tensor):
        return to_jsonable(value.item() if value.numel() == 1 else value.tolist(), where)
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar / 0-d array
        return to_jsonable(value.item(), where)
    if hasattr(value, "tolist"):
        return to_jsonable(value.tolist(), where)
    raise TypeError(f"{where} of type {type(value).__name__} cannot be stored as JSON metadata")


def _cpu_state(state: Mapping[str, torch.Tensor], name: str) -> StateDict:
    if not isinstance(state, Mapping):
        raise TypeError(f"{name} must be a mapping of tensors, got {type(state).__name__}")
    out = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{name}[{k!r}] is a {type(v).__name__}, not a tensor")
        out[str(k)] = v.detach().cpu()
    return out


def _versions() -> dict[str, str]:
    try:
        from importlib.metadata import version

        wi = version("weightinfo")
    except Exception:  # not installed as a distribution
        import weightinfo

        wi = getattr(weightinfo, "__version__", "unknown")
    return {"weightinfo_version": str(wi), "torch_version": str(torch.__version__)}


def _check_arch(arch: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in ("name", "input_shape", "n_classes") if k not in arch]
    if missing:
        raise ValueError(f"arch is missing {', '.join(missing)} (needed to rebuild the model)")
    out = to_jsonable(dict(arch), "arch")
    out.setdefault("kwargs", {})
    return out


def _build(arch: Mapping[str, Any]) -> nn.Module:
    """``build_model`` from an architecture dict, without touching the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        return build_model(
            arch["name"], tuple(arch["input_shape"]), int(arch["n_classes"]), **arch["kwargs"]
        )


# --------------------------------------------------------------------------------------------
# Save / load
# --------------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``model`` (rebuilt, weights loaded, eval mode, CPU unless
    ``map_location`` says otherwise), ``init_state_dict`` (or ``None``), ``meta`` and ``path``."""

    model: nn.Module
    init_state_dict: StateDict | None
    meta: dict[str, Any]
    path: Path

    @property
    def arch(self) -> dict[str, Any]:
        """The ``build_model`` arguments: ``name``, ``kwargs``, ``input_shape``, ``n_classes``."""
        return self.meta["architecture"]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.meta.get("metrics", {})

    def init_model(self) -> nn.Module:
        """A fresh copy of the architecture holding the initial weights, in eval mode."""
        if self.init_state_dict is None:
            raise ValueError(f"checkpoint {str(self.path)!r} has no initial weights")
        m = _build(self.arch)
        m.load_state_dict(self.init_state_dict)
        return m.to(next(self.model.parameters()).device).eval()


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    arch: Mapping[str, Any],
    dataset: Mapping[str, Any] | None = None,
    train_config: Mapping[str, Any] | None = None,
    seed: int | None = None,
    metrics: Mapping[str, Any] | None = None,
    init_state_dict: Mapping[str, torch.Tensor] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights to ``path`` and its metadata to ``path`` with suffix ``.json``.

    ``arch`` must hold ``name``, ``input_shape``, ``n_classes`` and optionally ``kwargs``, such
    that ``build_model(name, input_shape, n_classes, **kwargs)`` rebuilds ``model``; this is
    checked against ``model``'s state-dict keys and shapes. ``init_state_dict`` must be a copy
    (e.g. ``{k: v.clone() for k, v in model.state_dict().items()}`` taken before training), not
    the live ``state_dict()`` of the trained model. ``extra`` adds further top-level JSON fields.
    Both files are written atomically. Returns ``path``.
    """
    path = Path(path)
    json_path = metadata_path(path)
    arch = _check_arch(arch)
    state = _cpu_state(model.state_dict(), "model.state_dict()")
    init = None if init_state_dict is None else _cpu_state(init_state_dict, "init_state_dict")
    with torch.device("meta"):
        ref = build_model(
            arch["name"], tuple(arch["input_shape"]), arch["n_classes"], **arch["kwargs"]
        )
    ref_shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    for label, sd in (("model", state), ("init_state_dict", init)):
        if sd is not None and {k: tuple(v.shape) for k, v in sd.items()} != ref_shapes:
            raise ValueError(
                f"{label} does not match the architecture {arch}: keys or shapes differ"
            )

    meta: dict[str, Any] = {
        "format": "weightinfo-checkpoint",
        "format_version": FORMAT_VERSION,
        "id": uuid.uuid4().hex,
        "weights_file": path.name,
        "architecture": arch,
        "n_parameters": count_parameters(model),
        "dataset": to_jsonable(dict(dataset or {}), "dataset"),
        "train_config": to_jsonable(dict(train_config or {}), "train_config"),
        "seed": to_jsonable(seed, "seed"),
        "metrics": to_jsonable(dict(metrics or {}), "metrics"),
        "has_init_state_dict": init is not None,
        **_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    for k, v in (extra or {}).items():
        if k in meta:
            raise ValueError(f"extra field {k!r} would overwrite a reserved metadata field")
        meta[str(k)] = to_jsonable(v, f"extra[{k!r}]")

    payload = {"state_dict": state, "init_state_dict": init, "meta": meta}
    atomic_write(path, lambda fh: torch.save(payload, fh))
    text = json.dumps(meta, indent=2, sort_keys=False, allow_nan=False) + "\n"
    atomic_write(json_path, lambda fh: fh.write(text.encode()))
    return path


def load_checkpoint(
    path: str | os.PathLike, *, map_location: str | torch.device = "cpu"
) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`; the model is rebuilt and in eval mode.

    The metadata is read from the JSON sidecar when present (else from the copy inside ``path``);
    a sidecar that belongs to another save (different ``id``) is ignored with a warning. Loading
    does not advance torch's global RNG.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or "state_dict" not in payload or "meta" not in payload:
        raise ValueError(f"{str(path)!r} is not a weightinfo checkpoint")
    meta = payload["meta"]
    json_path = metadata_path(path)
    if json_path.is_file():
        side = json.loads(json_path.read_text())
        if side.get("id") == meta.get("id"):
            meta = side
        else:
            warnings.warn(
                f"{str(json_path)!r} belongs to another save of {path.name}; using the metadata "
                "stored in the checkpoint itself",
                stacklevel=2,
            )
    model = _build(meta["architecture"])
    model.load_state_dict(payload["state_dict"])
    model.to(map_location).eval()
    return Checkpoint(
        model=model, init_state_dict=payload.get("init_state_dict"), meta=meta, path=path
    )


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
    :class:`~weightinfo.train.TrainResult` and the recorded ``metrics``."""

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
) -> TrainedRun:
    """Train ``spec`` from scratch and save it with its initial weights as checkpoint ``path``.

    ``ds`` is the dataset (default: :func:`load_training_data` for ``spec``, from ``data_root``).
    The model is built after ``torch.manual_seed(spec.seed)`` and trained with
    :func:`weightinfo.train.train` on ``ds.train_loader(spec.batch_size, seed=spec.seed)``,
    evaluating the test set each epoch. ``metrics`` holds the test loss and accuracy and the last
    epoch's running ``train_loss`` / ``train_accuracy``; with ``evaluate_train`` those two come
    from the final model on the whole training set and the running values are kept as
    ``last_epoch_train_*``. A non-zero ``spec.label_noise`` is recorded in ``train_config``.
    ``dataset_extra`` and ``train_config_extra`` add fields to those metadata sections, ``extra``
    top-level fields (before ``history``, the per-epoch records), ``created_by`` one after it.
    Shared by :func:`train_or_load` and ``weightinfo train``.
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
from ._cache import CACHE_ENV_VAR, config_hash, default_cache_dir, train_or_load  # noqa: E402
