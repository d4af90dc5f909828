"""Plain minibatch SGD on the cross-entropy, seeded, shared by the reproductions that count their steps
(``fig4``, ``temperature``): their results need SGD at exactly the given η and B, nothing else (no momentum,
schedule or callbacks), with the data order from ``seed`` alone."""

from __future__ import annotations

__all__ = ["plain_sgd"]


def plain_sgd(model, X, Y, lr: float, batch: int, epochs: int, seed: int) -> int:
    """Plain SGD at learning rate ``lr`` and batch size ``batch`` for ``epochs`` epochs (data order seeded by
    ``seed``); returns the number of steps."""
    import torch
    import torch.nn.functional as fn

    g = torch.Generator().manual_seed(10_000 + seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n, steps = len(X), 0
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            opt.zero_grad(set_to_none=True)
            fn.cross_entropy(model(X[idx]), Y[idx]).backward()
            opt.step()
            steps += 1
    return steps
