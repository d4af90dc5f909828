"""Reproducible epochs and resumable state for the iterative estimators (``iw.variational``).

The data order and noise of an epoch depend only on (seed, epoch), so a run resumed from the state saved after
epoch e equals an uninterrupted one; the state is written atomically (temporary file + ``os.replace``) and is
tied to a hash of everything that determines the trajectory.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from pathlib import Path

import torch

from .._base.atomic import atomic_write
from .._base.batches import iter_batches


def epoch_seed(seed: int, epoch: int, stream: str) -> int:
    """A 63-bit seed that depends only on (seed, epoch, stream)."""
    digest = hashlib.sha256(f"{int(seed)}/{int(epoch)}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def epoch_batches(data, seed, epoch, batch_size, device):
    """Validated batches of one epoch: an (X, Y) tuple is permuted with a seed from (seed, epoch)."""
    if (
        isinstance(data, tuple)
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    ):
        X, Y = data
        if X.shape[0] == Y.shape[0]:
            g = torch.Generator().manual_seed(epoch_seed(seed, epoch, "order"))
            perm = torch.randperm(X.shape[0], generator=g, device="cpu")  # same order on any device
            data = ((X[i.to(X.device)], Y[i.to(Y.device)]) for i in perm.split(batch_size))
    return iter_batches(data, device=device, batch_size=batch_size)


def _digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def state_fingerprint(params, prior, names, s, lam2, init_variance) -> str:
    """Hash of everything that determines the trajectory (not max_epochs, tol, mc_samples, progress).

    ``s``: the run's ``VariationalSettings``. The hashed form is that of the former settings dict
    (``repr`` of each value), so state files written before the typed settings still resume."""
    keys = ("beta", "kl_factor", "learn_prior_scale", "structure", "seed", "loss", "lr", "lr_decay")
    keys += ("batch_size", "init_var", "init_samples", "local_reparam", "input_floor")
    cfg = {k: repr(getattr(s, k)) for k in keys}
    cfg.update(
        preset=s.preset,
        lambda2={k: repr(v) for k, v in lam2.items()},
        params=[[k, list(p.shape), str(p.dtype)] for k, p in params.items()],
        weights=_digest(params.values()),
        prior_mean=_digest(prior.mean[k] for k in params),
        variational=list(names),
        init_variance=_digest(
            torch.as_tensor(init_variance[k]) for k in sorted(init_variance or {})
        ),
    )
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


_KEYS = ("config", "epoch", "init_note", "init_train_loss", "monitor", "logvar", "loglam")
_KEYS += ("optimizer", "history")


def snapshot(run, epoch, history) -> dict:
    """The resume state of a run (``variational._Run``: config hash, start, family, Adam, monitor)."""
    return {
        "config": run.config,
        "epoch": int(epoch),
        **run.start.state_dict(),
        "monitor": run.mon.state_dict(),
        "logvar": {n: v.detach().clone() for n, v in run.fam.logvar.items()},
        "loglam": {k: v.detach().clone() for k, v in run.fam.loglam.items()},
        "optimizer": copy.deepcopy(run.opt.state_dict()),
        "history": copy.deepcopy(history),
    }


def save_state(path: Path, state: dict) -> None:
    """Atomic write (``weightinfo._base.atomic``): a temporary file in the same folder, then ``os.replace``."""
    atomic_write(path, lambda fh: torch.save(state, fh))


def load_state(path: Path | None) -> dict | None:
    """The state saved by :func:`save_state` at ``path``, or ``None`` when there is none yet.

    Anything else at ``path`` (a folder, a truncated or foreign file) is a ``ValueError`` naming it,
    rather than a file that the next save would overwrite.
    """
    if path is None or not path.exists():
        return None
    what = f"state_path {str(path)!r} is not a variational resume state"
    if not path.is_file():
        raise ValueError(f"{what} (not a file)")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
            raise ValueError(f"{what} (not a torch file: no zip header)")
    try:
        state = torch.load(path, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{what} (a file holding objects other than tensors)") from e
    except Exception as e:  # torch's reader: RuntimeError, OSError (Errno 22), EOFError, ...
        reason = str(e).split(". ")[0].strip()
        raise ValueError(f"{what} (truncated or corrupt torch file: {reason})") from e
    if not isinstance(state, dict) or not set(_KEYS) <= state.keys():
        raise ValueError(f"{what} (a torch file without the saved estimator's fields)")
    return state
