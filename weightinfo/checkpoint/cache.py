"""Cached training: :func:`train_or_load` trains a configuration once and reloads it afterwards.

The checkpoint of a configuration is ``<cache>/<config hash>.pt`` (+ ``.json``), where ``<cache>``
is the ``cache_dir`` argument, else ``$WEIGHTINFO_CACHE``, else
``$XDG_CACHE_HOME/weightinfo/checkpoints`` (default ``~/.cache/weightinfo/checkpoints``).
Training and the checkpoint format are :mod:`.spec`'s and :mod:`.files`'.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .._base.jsonable import to_jsonable
from .files import FORMAT_VERSION, Checkpoint, load_checkpoint, metadata_path
from .spec import TrainSpec, train_checkpoint

__all__ = ["CACHE_ENV_VAR", "config_hash", "default_cache_dir", "train_or_load"]

CACHE_ENV_VAR = "WEIGHTINFO_CACHE"


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
    label_noise: float = 0.0,
    label_noise_seed: int | None = None,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    force: bool = False,
    progress: bool = False,
    device: str | torch.device | None = None,
) -> Checkpoint:
    """Train ``model`` (a :data:`~weightinfo.models.MODELS` name) on ``dataset``, or load the cache.

    The configuration (dataset, ``data_seed``, model, ``model_kwargs``, every training
    hyper-parameter and ``seed``; ``label_noise`` and ``label_noise_seed`` only when
    ``label_noise`` is non-zero) is hashed with :func:`config_hash`; the checkpoint lives at
    ``<cache_dir>/<hash>.pt`` (see :func:`default_cache_dir`). If it exists and its metadata
    carries the same hash it is loaded, otherwise (or with ``force=True``) it is trained and saved
    by :func:`train_checkpoint`. ``label_noise`` is the fraction of training labels made random
    (:func:`weightinfo.data.corrupt_labels`, seeded with ``label_noise_seed``, default ``seed``).
    ``data_root``, ``download``, ``progress`` and ``device`` do not enter the hash. Returns the
    checkpoint as read back from disk (CPU, eval mode) in both cases.
    """
    spec = TrainSpec(
        dataset=dataset,
        data_seed=data_seed,
        model=model,
        model_kwargs=to_jsonable(dict(model_kwargs or {}), "model_kwargs"),
        epochs=epochs,
        lr=lr,
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
        schedule=schedule,
        gamma=gamma,
        step_size=step_size,
        loss=loss,
        batch_size=batch_size,
        seed=seed,
        label_noise=label_noise,
        label_noise_seed=label_noise_seed,
    )
    config = {"format_version": FORMAT_VERSION, **spec.cache_config()}
    key = config_hash(config)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = folder / f"{key}.pt"
    if not force:
        cached = _try_cached(path, key)
        if cached is not None:
            return cached
    train_checkpoint(
        path,
        spec,
        data_root=data_root,
        download=download,
        extra={"config_hash": key, "config": config},
        progress=progress,
        device=device,
    )
    return load_checkpoint(path)
