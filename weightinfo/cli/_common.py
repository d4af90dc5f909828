"""Shared pieces of the commands: state, output, errors, model and data resolution.

* Output: results go to stdout (:func:`say`), status lines to stderr (:func:`info`, silenced by
  ``--quiet``); progress bars only when stderr is a terminal (:func:`progress_enabled`).
* Errors: :func:`user_errors` turns the library's ``ValueError`` / ``TypeError`` / ``OSError``
  into one red line ``error: ...`` on stderr and exit code 2 (``--debug`` re-raises instead);
  the global flags may follow the sub-command (:func:`hoist_global_flags`).
* Output locations: :func:`check_output` before any work, :func:`all_or_nothing` to write a
  results folder completely or not at all.
* Options: declared once in :mod:`._options` (re-exported here).
* Resolution: which model and kwargs (:func:`resolve_model`, the dataset's suggestion updated by
  explicit options), which training settings (:data:`TRAIN_DEFAULTS`), and where the trained
  weights come from: a checkpoint (:func:`from_checkpoint`) or training on the fly, cached
  (:func:`cached_train`); :func:`load_source` for a :class:`~._options.ModelSource`.

Heavy modules (torch, rich, the library) are imported inside functions so ``--help`` stays fast.
"""

from __future__ import annotations

import contextlib
import copy
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from ._options import (  # noqa: F401 - the option types, re-exported for the commands
    _FALLBACK_TRAIN,
    TRAIN_DEFAULTS,
    BatchSizeOpt,
    CheckpointOpt,
    DataRootOpt,
    DataSeedOpt,
    DatasetOpt,
    DownloadOpt,
    EpochsOpt,
    LikelihoodOpt,
    LossOpt,
    LrOpt,
    ModelArgOpt,
    ModelOpt,
    ModelSource,
    NSamplesOpt,
    OptimizerOpt,
    Quiet,
    SplitSeedOpt,
    TrainBatchSizeOpt,
    TrainDefaults,
    TrainSeedOpt,
    WidthOpt,
    WidthsOpt,
)

#: Model used for datasets without a suggestion (``npz:PATH``).
_FALLBACK_MODEL = ("mlp", {"widths": [256, 256]})


# --------------------------------------------------------------------------------------------
# Global state, output and errors
# --------------------------------------------------------------------------------------------


@dataclass
class _State:
    quiet: bool = False
    plain: bool = False
    debug: bool = False


#: The global options (``weightinfo --quiet/--plain/--debug COMMAND``), set by the app callback.
STATE = _State()


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console():
    from rich.console import Console

    return Console(highlight=False)


def command_line(
    ctx: typer.Context, *, skip: tuple[str, ...] = ("quiet",), env: bool = False
) -> str:
    """This invocation as a rerunnable shell command: ``weightinfo``, the sub-command path and the options given
    on the command line, in declaration order (read from the command's context, so that it is right however the
    command was started). ``env``: prefix the variables that change results (``OMP_NUM_THREADS``, …)."""
    import shlex

    from .._base.provenance import ENV_VARS

    words = ["weightinfo", *ctx.command_path.split()[1:]]
    for p in ctx.command.params:
        source = ctx.get_parameter_source(p.name)
        if p.name in skip or getattr(source, "name", None) != "COMMANDLINE" or not p.opts:
            continue
        value = ctx.params[p.name]
        if getattr(p, "is_flag", False):
            words += [p.opts[0]] if value else p.secondary_opts[:1]
        else:
            for v in value if isinstance(value, (list, tuple)) else [value]:
                words += [p.opts[0], str(v)]
    prefix = [f"{k}={shlex.quote(os.environ[k])}" for k in ENV_VARS if env and os.environ.get(k)]
    return " ".join(prefix + [shlex.quote(w) for w in words])


def info(message: str, quiet: bool) -> None:
    """A status line on stderr (not with ``--quiet``)."""
    if not quiet:
        from rich.text import Text

        stderr_console().print(Text(message, style="dim"))


def say(message: str = "", *, wrap: bool = False) -> None:
    """A result line on stdout (plain text, no markup); ``wrap`` folds it at the console width."""
    from rich.text import Text

    stdout_console().print(Text(message), soft_wrap=not wrap)


def fail(message: str) -> None:
    """Print the first line of ``message`` as ``error: ...`` (red, stderr) and exit with code 2."""
    from rich.text import Text

    lines = str(message).strip().splitlines() or ["unknown error"]
    text = lines[0]
    if len(lines) > 1:
        text += " (more with --debug)"
    stderr_console().print(Text("error: ", style="bold red") + Text(text, style="red"))
    raise typer.Exit(code=2)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's errors about user input into ``error: ...`` and exit code 2."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except (ValueError, TypeError, OSError) as e:
        if STATE.debug:
            raise
        fail(str(e) or type(e).__name__)


def progress_enabled(quiet: bool) -> bool:
    """Whether to show progress bars: not with ``--quiet``, and only when stderr is a terminal."""
    from .._base.progress import progress_enabled as enabled

    return enabled(not quiet)


def fmt_acc(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


#: Global flags also accepted after the sub-command (``weightinfo measure ... --debug``).
GLOBAL_FLAGS = ("--debug", "--quiet", "-q", "--plain")


def hoist_global_flags(args: list[str]) -> list[str]:
    """``args`` with every :data:`GLOBAL_FLAGS` flag (before a ``--``) moved to the front.

    Click parses a group's options only before the sub-command's name; hoisting lets the global
    flags stand anywhere, which is what "(more with --debug)" invites users to do.
    """
    args = list(args)
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    return flags + [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]


# --------------------------------------------------------------------------------------------
# Output locations: checked before the work, written all or nothing
# --------------------------------------------------------------------------------------------


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest existing ancestor."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output(path: Path, option: str, *, folder: bool) -> Path:
    """Fail early (``ValueError`` naming ``option``) when ``path`` cannot be written.

    ``folder``: ``path`` is a results folder (may exist); else a file (whose folder may not exist
    yet). Writability is tested by creating and removing a temporary file where the output will go,
    which also catches read-only file systems and pseudo file systems such as ``/proc``.
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"{option} {str(path)!r} exists and is not a folder")
    if not folder and path.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a folder; expected a file name")
    where = _existing_ancestor(path if folder else path.parent)
    if not where.is_dir():
        raise ValueError(f"{option} {str(path)!r}: {str(where)!r} is not a folder")
    probe = where / f".weightinfo-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as e:
        raise ValueError(
            f"{option} {str(path)!r}: cannot write in {str(where)!r} ({e.strerror or e})"
        ) from None
    return path


@contextlib.contextmanager
def all_or_nothing(out: Path) -> Iterator[Path]:
    """A staging folder for the files of results folder ``out``: all of them land in ``out`` when the
    block succeeds, none when it fails.

    The files are written into a hidden folder next to their destination (inside ``out`` when it
    exists, else in its nearest existing ancestor, so the final moves are renames on one file
    system). On success a new ``out`` is the staging folder renamed (with any missing parents
    created); an existing ``out`` gets each file moved in with ``os.replace`` (other files there are
    kept). On failure the staging folder is removed and ``out`` is as before.
    """
    out = Path(out)
    exists = out.is_dir()
    base = out if exists else _existing_ancestor(out.parent)
    stage = base / f".{out.name or 'out'}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    stage.mkdir()
    try:
        yield stage
        if exists:
            for f in sorted(stage.iterdir()):
                os.replace(f, out / f.name)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Option parsing: model kwargs and training settings
# --------------------------------------------------------------------------------------------


def base_name(dataset: str) -> str:
    """Key into the defaults: canonical name without ``binary-``, MNIST variants as ``mnist``."""
    from ..data import canonical_name

    name = canonical_name(dataset)
    name = name.removeprefix("binary-")
    return "mnist" if name in ("mnist-full", "mnist-10k") else name


def _parse_value(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        return [_parse_value(t.strip()) for t in text.split(",") if t.strip()]
    return text


def model_kwargs(widths: str | None, width: float | None, args: list[str] | None) -> dict:
    """Model kwargs given explicitly by ``--widths``, ``--width`` and ``--model-arg KEY=VALUE``."""
    kwargs: dict[str, Any] = {}
    if widths is not None:
        parts = [p.strip() for p in widths.replace(" ", ",").split(",") if p.strip()]
        if parts and parts[0].lower() == "none":
            parts = []
        try:
            kwargs["widths"] = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"--widths must be comma-separated integers, got {widths!r}") from None
    if width is not None:
        kwargs["width"] = float(width)
    for item in args or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--model-arg must look like KEY=VALUE, got {item!r}")
        kwargs[key.strip()] = _parse_value(value.strip())
    return kwargs


def resolve_model(dataset: str, model: str | None, explicit: dict) -> tuple[str, dict]:
    """Model name and kwargs: the dataset's suggestion, updated by explicit kwargs."""
    from ..models import MODELS, default_model_for

    base = base_name(dataset)
    try:
        s = default_model_for(base)
        suggested = (
            s.name,
            {k: list(v) if isinstance(v, tuple) else v for k, v in s.kwargs.items()},
        )
    except ValueError:
        suggested = copy.deepcopy(_FALLBACK_MODEL)
    if model is None:
        return suggested[0], {**suggested[1], **explicit}
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    if model == suggested[0]:
        return model, {**suggested[1], **explicit}
    return model, dict(explicit)


def train_settings(dataset: str, epochs, lr, optimizer, batch_size) -> TrainDefaults:
    """The given training settings, the dataset's defaults (:data:`TRAIN_DEFAULTS`) for the rest."""
    d = TRAIN_DEFAULTS.get(base_name(dataset), _FALLBACK_TRAIN)
    return TrainDefaults(
        epochs=d.epochs if epochs is None else int(epochs),
        lr=d.lr if lr is None else float(lr),
        optimizer=d.optimizer if optimizer is None else optimizer,
        batch_size=d.batch_size if batch_size is None else int(batch_size),
    )


# --------------------------------------------------------------------------------------------
# Data and trained weights: from a checkpoint, or trained on the fly (cached)
# --------------------------------------------------------------------------------------------


def load_data(dataset: str, *, seed: int, root: Path | None, download: bool):
    from ..data import load_dataset

    return load_dataset(dataset, root=root, download=download, seed=seed)


def load_ckpt(path: Path):
    """:func:`~weightinfo.checkpoint.load_checkpoint`, any unreadable file a ``ValueError``."""
    from ..checkpoint import load_checkpoint

    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    try:
        return load_checkpoint(path)
    except (ValueError, OSError):
        raise
    except Exception as e:  # unpickling / state-dict errors from torch
        raise ValueError(f"cannot read checkpoint {str(path)!r}: {e}") from e


def _ckpt_dataset(meta: dict) -> tuple[str | None, int]:
    """Dataset name and split seed recorded in checkpoint metadata."""
    config = meta.get("config") or {}
    ds = meta.get("dataset") or {}
    name = config.get("dataset") or ds.get("requested_name") or ds.get("name")
    seed = ds.get("data_seed", config.get("data_seed", ds.get("seed", 0)))
    return name, int(seed or 0)


def from_checkpoint(
    path: Path, *, dataset: str | None, data_seed: int | None, root: Path | None, download: bool
):
    """Checkpoint ``path`` and its training data: ``(ck, ds, dataset name, split seed)``.

    The dataset and split seed default to those recorded in the checkpoint; when both are the
    recorded ones, the recorded label noise is applied again (same fraction and seed).
    """
    from ..data import corrupt_labels

    ck = load_ckpt(path)
    ck_name, ck_seed = _ckpt_dataset(ck.meta)
    name = dataset or ck_name
    if name is None:
        raise ValueError(f"{path} does not record its dataset; pass --dataset")
    dseed = ck_seed if data_seed is None else data_seed
    ds = load_data(name, seed=dseed, root=root, download=download)
    noise = ((ck.meta.get("dataset") or {}).get("info") or {}).get("label_noise")
    if noise and name == ck_name and dseed == ck_seed:
        ds = corrupt_labels(ds, float(noise["fraction"]), seed=int(noise["seed"]))
    return ck, ds, name, dseed


def cached_train(
    dataset: str,
    model: str,
    kwargs: dict,
    settings: TrainDefaults,
    *,
    seed: int,
    data_seed: int,
    data_root: Path | None,
    download: bool,
    quiet: bool,
):
    """``train_or_load`` with a status line saying whether the cache was hit: ``(ck, hit)``."""
    from ..checkpoint import default_cache_dir, train_or_load

    folder = default_cache_dir()
    before = {p: p.stat().st_mtime_ns for p in folder.glob("*.pt")} if folder.is_dir() else {}
    info(
        f"training {model} {kwargs} on {dataset} ({settings.epochs} epochs, {settings.optimizer}, "
        f"lr {settings.lr:g}, seed {seed}) unless cached in {folder}",
        quiet,
    )
    t0 = time.perf_counter()
    ck = train_or_load(
        dataset,
        model,
        model_kwargs=kwargs,
        epochs=settings.epochs,
        lr=settings.lr,
        optimizer=settings.optimizer,
        batch_size=settings.batch_size,
        seed=seed,
        data_seed=data_seed,
        data_root=data_root,
        download=download,
        progress=progress_enabled(quiet),
    )
    hit = before.get(ck.path) == ck.path.stat().st_mtime_ns
    what = "loaded cached checkpoint" if hit else "trained and cached"
    info(f"{what} {ck.path} ({time.perf_counter() - t0:.1f} s)", quiet)
    return ck, hit


def load_source(src: ModelSource, *, quiet: bool):
    """The model to measure and its training data, from ``src.checkpoint`` or trained on the fly (cached).

    Returns ``(ck, ds, dataset name, split seed, cache hit)``; the cache hit is None for a checkpoint.
    """
    if src.checkpoint is not None:
        ck, ds, name, dseed = from_checkpoint(
            src.checkpoint,
            dataset=src.dataset,
            data_seed=src.data_seed,
            root=src.data_root,
            download=src.download,
        )
        return ck, ds, name, dseed, None
    if src.dataset is None:
        raise ValueError("--dataset is required without --checkpoint")
    name, dseed = src.dataset, 0 if src.data_seed is None else src.data_seed
    ds = load_data(name, seed=dseed, root=src.data_root, download=src.download)
    mname, kwargs = resolve_model(
        name, src.model, model_kwargs(src.widths, src.width, src.model_arg)
    )
    s = train_settings(name, src.epochs, src.lr, src.optimizer, src.train_batch_size)
    from .._base import distributed as dist

    # Under a process group rank 0 trains (or loads) first and caches; the others then load its checkpoint.
    if not dist.is_main():
        dist.barrier()
    ck, hit = cached_train(
        name,
        mname,
        kwargs,
        s,
        seed=src.train_seed,
        data_seed=dseed,
        data_root=src.data_root,
        download=src.download,
        quiet=quiet,
    )
    if dist.is_main():
        dist.barrier()
    return ck, ds, name, dseed, hit


def training_data(ck, ds, *, loss: str, n_samples: int | None):
    """The first ``n_samples`` training samples of ``ds`` (all by default) after checking that the
    checkpoint's model fits the dataset: ``(X, Y)``.

    Under a process group (torchrun) this rank's contiguous share of those rows: rank r of W gets rows
    ⌊rn/W⌋ … ⌊(r+1)n/W⌋ − 1 (:func:`weightinfo._base.distributed.shard_bounds`); the library reduces over
    ranks, so results are for all n rows."""
    from .._base import distributed as dist
    from ..models.compat import check_fits

    check_fits(ck.meta.get("architecture", {}), ds, loss=loss)
    if n_samples is not None and n_samples < 1:
        raise ValueError(f"--n-samples must be positive, got {n_samples}")
    n = len(ds) if n_samples is None else min(int(n_samples), len(ds))
    lo, hi = dist.shard_bounds(n)
    return ds.x_train[lo:hi], ds.y_train[lo:hi]
