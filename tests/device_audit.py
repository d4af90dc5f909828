"""Device-cleanliness audit without a GPU: a ``TorchFunctionMode`` that watches weightinfo's own torch calls.

Only a CPU exists on the test machines, so a tensor left on the wrong device cannot fail there. What *can* be
checked is the code that would put it there, at the call sites in ``weightinfo/``:

* **factories** — ``torch.zeros/ones/empty/full/eye/arange/rand*/randperm/linspace/tensor`` (and
  ``as_tensor`` of non-tensor data) called without a ``device=`` keyword create a CPU tensor whatever the
  model's device; every such call must name its device (``device=p.device``, or ``device="cpu"`` where the
  CPU is meant), or derive it from a tensor (``*_like``, ``t.new_zeros``);
* **syncs** — ``.item()``, ``.tolist()``, ``.cpu()``, ``.numpy()``, ``float(t)``, ``int(t)``, ``bool(t)``,
  ``t.__index__``, ``format(t)``: each copies device memory to the host and waits for the device. Counted per
  call site, so that running an entry point on 1 and on 3 batches shows which sites run once per batch.

Only calls whose immediate caller is a file of the ``weightinfo`` package are seen (torch's own internals are
not weightinfo's business).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

import weightinfo

PACKAGE = str(Path(weightinfo.__file__).resolve().parent)

FACTORIES = {
    torch.zeros,
    torch.ones,
    torch.empty,
    torch.full,
    torch.eye,
    torch.arange,
    torch.randn,
    torch.rand,
    torch.randint,
    torch.randperm,
    torch.linspace,
    torch.tensor,
    torch.as_tensor,
}
SYNCS = {
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.cpu,
    torch.Tensor.numpy,
    torch.Tensor.__bool__,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__index__,
    torch.Tensor.__format__,
}


def _site(depth: int = 2) -> str | None:
    """``path:line (function)`` of the caller ``depth`` frames up if it lies in weightinfo, else None."""
    f = sys._getframe(depth)
    path = str(Path(f.f_code.co_filename).resolve())
    if not path.startswith(PACKAGE):
        return None
    return f"{path[len(PACKAGE) - len('weightinfo') :]}:{f.f_lineno} ({f.f_code.co_name})"


class DeviceAudit(TorchFunctionMode):
    """Record factory calls without ``device=`` and host syncs made by weightinfo code.

    ``undeviced`` lists ``(site, function)``; ``syncs`` counts host syncs per site.
    """

    def __init__(self):
        super().__init__()
        self.undeviced: list[tuple[str, str]] = []
        self.syncs: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            derived = func is torch.as_tensor and args and isinstance(args[0], torch.Tensor)
            site = None if derived else _site()
            if site is not None:
                self.undeviced.append((site, func.__name__))
        elif func in SYNCS:
            site = _site()
            if site is not None:
                self.syncs[site] += 1
        return func(*args, **kwargs)


def per_batch_syncs(run, few: int = 1, many: int = 3) -> dict[str, int]:
    """Sites whose sync count grows with the number of batches: ``{site: extra syncs per extra batch}``.

    ``run(n_batches)`` runs an entry point on ``n_batches`` batches.
    """
    counts = []
    for n in (few, many):
        with DeviceAudit() as audit:
            run(n)
        counts.append(audit.syncs)
    out = {}
    for site in set(counts[0]) | set(counts[1]):
        extra = counts[1][site] - counts[0][site]
        if extra > 0:
            out[site] = extra // (many - few)
    return out
