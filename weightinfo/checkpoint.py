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

:func:`train_or_load` trains a named model on a named dataset and caches the checkpoint as
``<cache>/<config hash>.pt``, where ``<cache>`` is the ``cache_dir`` argument, else
``$WEIGHTINFO_CACHE``, else ``$XDG_CACHE_HOME/weightinfo/checkpoints`` (default
``~/.cache/weightinfo/checkpoints``). A later call with the same configuration loads that file
instead of training.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import json
import math
import os
import tempfile
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from .models import build_model, count_parameters
from .train import evaluate, train

FORMAT_VERSION = 1
CACHE_ENV_VAR = "WEIGHTINFO_CACHE"

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


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, then ``os.replace`` it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
    _atomic_write(path, lambda fh: torch.save(payload, fh))
    text = json.dumps(meta, indent=2, sort_keys=False, allow_nan=False) + "\n"
    _atomic_write(json_path, lambda fh: fh.write(text.encode()))
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
# Cached training
# --------------------------------------------------------------------------------------------


def config_hash(config: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``config`` as canonical JSON (sorted keys, lists)."""
    text = json.dumps(to_jsonable(dict(config), "config"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$WEIGHTINFO_CACHE``, else ``$XDG_CACHE_HOME/weightinfo/checkpoints``, else
    ``~/.cache/weightinfo/checkpoints``."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "weightinfo" / "checkpoints"


def _load_dataset(name: str, **kwargs: Any):
    """``weightinfo.data.load_dataset``, imported lazily (tests substitute this function)."""
    from weightinfo.data import load_dataset

    return load_dataset(name, **kwargs)


def _try_cached(path: Path, key: str) -> Checkpoint | None:
    if not (path.is_file() and metadata_path(path).is_file()):
        return None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*belongs to another save")
            ckpt = load_checkpoint(path)
    except Exception as e:  # corrupt or foreign file: retrain and overwrite it
        warnings.warn(f"ignoring unreadable cached checkpoint {str(path)!r}: {e}", stacklevel=3)
        return None
    return ckpt if ckpt.meta.get("config_hash") == key else None


def train_or_load(
    dataset: str,
    model: str,
    *,
    epochs: int,
    lr: float,
    optimizer: str = "sgd",
    batch_size: int = 128,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str | None = None,
    gamma: float | None = None,
    step_size: int | None = None,
    loss: str = "cross_entropy",
    data_seed: int = 0,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    force: bool = False,
    progress: bool = False,
    device: str | torch.device | None = None,
) -> Checkpoint:
    """Train ``model`` (a :data:`~weightinfo.models.MODELS` name) on ``dataset``, or load the cache.

    The configuration (dataset, ``data_seed``, model, ``model_kwargs``, every training
    hyper-parameter and ``seed``) is hashed with :func:`config_hash`; the checkpoint lives at
    ``<cache_dir>/<hash>.pt`` (see :func:`default_cache_dir`). If it exists and its metadata
    carries the same hash it is loaded, otherwise (or with ``force=True``) the model is built
    with ``torch.manual_seed(seed)``, trained with :func:`weightinfo.train.train` on
    ``ds.train_loader(batch_size, seed=seed)`` (test set evaluated each epoch), and saved with its
    initial weights. ``data_root``, ``download``, ``progress`` and ``device`` do not enter the
    hash. Returns the checkpoint as read back from disk (CPU, eval mode) in both cases.
    """
    model_kwargs = to_jsonable(dict(model_kwargs or {}), "model_kwargs")
    config = {
        "format_version": FORMAT_VERSION,
        "dataset": dataset,
        "data_seed": data_seed,
        "model": model,
        "model_kwargs": model_kwargs,
        "epochs": epochs,
        "lr": lr,
        "optimizer": optimizer,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "schedule": schedule,
        "gamma": gamma,
        "step_size": step_size,
        "loss": loss,
        "batch_size": batch_size,
        "seed": seed,
    }
    key = config_hash(config)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = folder / f"{key}.pt"
    if not force:
        cached = _try_cached(path, key)
        if cached is not None:
            return cached

    ds = _load_dataset(dataset, root=data_root, download=download, seed=data_seed)
    arch = {
        "name": model,
        "kwargs": model_kwargs,
        "input_shape": list(ds.input_shape),
        "n_classes": int(ds.n_classes),
    }
    torch.manual_seed(seed)
    net = build_model(model, tuple(ds.input_shape), int(ds.n_classes), **model_kwargs)
    init_state = copy.deepcopy(net.state_dict())
    test_loader = ds.test_loader()
    result = train(
        net,
        ds.train_loader(batch_size=batch_size, shuffle=True, seed=seed),
        epochs=epochs,
        lr=lr,
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
        schedule=schedule,
        gamma=gamma,
        step_size=step_size,
        loss=loss,
        seed=seed,
        eval_loader=test_loader,
        progress=progress,
        device=device,
    )
    test = evaluate(net, test_loader, loss)
    metrics = {
        "train_loss": result.final["train_loss"],
        "train_accuracy": result.final["train_accuracy"],
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "epochs_run": result.epochs_run,
        "steps": result.steps,
        "train_time_s": result.total_time,
    }
    ds_meta = ds.to_dict() if hasattr(ds, "to_dict") else {"name": dataset}
    ds_meta = {**ds_meta, "data_seed": data_seed, "train_split": "train", "eval_split": "test"}
    save_checkpoint(
        path,
        net,
        arch=arch,
        dataset=ds_meta,
        train_config={**result.config, "batch_size": batch_size},
        seed=seed,
        metrics=metrics,
        init_state_dict=init_state,
        extra={"config_hash": key, "config": config, "history": result.history},
    )
    return load_checkpoint(path)
