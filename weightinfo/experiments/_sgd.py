"""Plain minibatch SGD on the cross-entropy, seeded, shared by the reproductions that count their steps
(``fig4``, ``temperature``): their results need SGD at exactly the given η and B, nothing else (no momentum,
schedule or callbacks), with the data order from ``seed`` alone."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

__all__ = ["plain_sgd", "sgd_to_targets"]


def _steps(model, X, Y, lr: float, batch: int, seed: int):
    """Endless plain-SGD steps on (X, Y): a fresh permutation each epoch from a generator seeded by ``seed``
    (the last partial batch kept), one step per ``next``. The one loop behind both functions below, so that
    the same ``seed`` gives the same data order in both."""
    import torch
    import torch.nn.functional as fn

    g = torch.Generator().manual_seed(10_000 + seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n = len(X)
    while True:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            opt.zero_grad(set_to_none=True)
            fn.cross_entropy(model(X[idx]), Y[idx]).backward()
            opt.step()
            yield


def plain_sgd(model, X, Y, lr: float, batch: int, epochs: int, seed: int) -> int:
    """Plain SGD at learning rate ``lr`` and batch size ``batch`` for ``epochs`` epochs (data order seeded by
    ``seed``); returns the number of steps."""
    steps = epochs * -(-len(X) // batch)
    model.train()
    for _ in itertools.islice(_steps(model, X, Y, lr, batch, seed), steps):
        pass
    return steps


def sgd_to_targets(
    model,
    X,
    Y,
    lr: float,
    batch: int,
    seed: int,
    *,
    targets: Sequence[float],
    check_every: int,
    max_steps: int,
    on_reach: Callable[[float, int, float, float], None],
) -> dict:
    """Plain SGD as :func:`plain_sgd` (same data order for the same ``seed``) until the full-batch mean
    cross-entropy on (X, Y) has fallen to every loss in ``targets``, or ``max_steps`` steps.

    The full-batch loss is computed before the first step and after every ``check_every`` steps; at the first
    check where it is ≤ a target not yet reached, ``on_reach(target, steps, loss, previous_check_loss)`` is
    called with the model exactly there (training then continues towards the lower targets). Returns
    ``{"steps", "loss"}`` at the last check (where training stopped)."""
    import torch
    import torch.nn.functional as fn

    if check_every < 1 or max_steps < 0:
        raise ValueError(
            f"check_every must be ≥ 1 and max_steps ≥ 0, got {check_every}, {max_steps}"
        )
    left = sorted((float(t) for t in targets), reverse=True)
    steps = 0

    def check(prev: float) -> float:
        with torch.no_grad():
            loss = float(fn.cross_entropy(model(X), Y))
        while left and loss <= left[0]:
            on_reach(left.pop(0), steps, loss, prev)
        model.train()
        return loss

    prev = check(float("inf"))
    sgd = _steps(model, X, Y, lr, batch, seed)
    while left and steps < max_steps:
        next(sgd)
        steps += 1
        if steps % check_every == 0 or steps >= max_steps:
            prev = check(prev)
    return {"steps": steps, "loss": prev}
