"""Checkpoint files: a ``torch.save`` of the weights plus a JSON sidecar of metadata, written atomically."""

from __future__ import annotations

import datetime as _dt
import json
import os
import pickle
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._base.atomic import atomic_write
from .._base.jsonable import to_jsonable
from .._base.version import __version__
from ..models import build_model, count_parameters

__all__ = ["FORMAT_VERSION", "Checkpoint", "load_checkpoint", "metadata_path", "save_checkpoint"]

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
    wi = __version__
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


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


def _read_payload(path: Path, map_location) -> dict[str, Any]:
    """The ``torch.load`` payload of ``path``, or a ``ValueError`` naming the file and the problem."""
    with open(path, "rb") as f:
        head = f.read(64)
    if path.suffix == ".json" or head.lstrip().startswith(b"{"):
        weights = None
        try:
            weights = json.loads(path.read_text(encoding="utf-8")).get("weights_file")
        except (ValueError, AttributeError):  # not JSON, or not an object: no name to suggest
            pass
        target = str(path.with_name(weights)) if isinstance(weights, str) else "its .pt file"
        raise ValueError(
            f"{str(path)!r} is JSON metadata, not a checkpoint; pass the checkpoint itself "
            f"({target})"
        )
    what = f"{str(path)!r} is not a weightinfo checkpoint"
    if not head.startswith(_ZIP_MAGIC):
        raise ValueError(f"{what} (not a torch file: no zip header)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses anything but tensors and plain containers (torch's message is a
        # page of advice on unsafe loading, not shown).
        raise ValueError(
            f"{what} (a torch file holding objects other than tensors, e.g. a pickled model)"
        ) from e
    except Exception as e:  # torch's zip reader: RuntimeError, OSError (Errno 22), EOFError, ...
        reason = str(e).split(". ")[0].strip()
        raise ValueError(f"{what} (truncated or corrupt torch file: {reason})") from e
    if not isinstance(payload, dict) or "state_dict" not in payload or "meta" not in payload:
        raise ValueError(f"{what} (a torch file without its state_dict and meta)")
    if not isinstance(payload["meta"], dict):
        raise ValueError(f"{what} (its 'meta' entry is not a dict)")
    return payload


def _read_metadata(json_path: Path) -> dict[str, Any]:
    """The JSON sidecar as a dict, or a ``ValueError`` naming the file."""
    try:
        side = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(
            f"metadata {str(json_path)!r} is not valid JSON ({e}); delete it to fall back on the "
            "metadata stored in the checkpoint"
        ) from e
    if not isinstance(side, dict):
        raise ValueError(
            f"metadata {str(json_path)!r} is not a JSON object but a {type(side).__name__}"
        )
    return side


def load_checkpoint(
    path: str | os.PathLike, *, map_location: str | torch.device = "cpu"
) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`; the model is rebuilt and in eval mode.

    The metadata is read from the JSON sidecar when present (else from the copy inside ``path``);
    a sidecar that belongs to another save (different ``id``) is ignored with a warning. Loading
    does not advance torch's global RNG. A file that is not a readable checkpoint (truncated,
    foreign, the JSON sidecar itself) or an unreadable sidecar raises a ``ValueError`` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    payload = _read_payload(path, map_location)
    meta = payload["meta"]
    json_path = metadata_path(path)
    if json_path.is_file():
        side = _read_metadata(json_path)
        if side.get("id") == meta.get("id"):
            meta = side
        else:
            warnings.warn(
                f"{str(json_path)!r} belongs to another save of {path.name}; using the metadata "
                "stored in the checkpoint itself",
                stacklevel=2,
            )
    if not isinstance(meta.get("architecture"), Mapping):
        raise ValueError(f"{str(path)!r}: its metadata has no 'architecture' to rebuild the model")
    model = _build(meta["architecture"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise ValueError(
            f"{str(path)!r}: the weights do not fit the architecture in its metadata: {e}"
        ) from e
    model.to(map_location).eval()
    return Checkpoint(
        model=model, init_state_dict=payload.get("init_state_dict"), meta=meta, path=path
    )
