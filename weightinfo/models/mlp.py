"""Fully connected ReLU network (multilayer perceptron) on flattened inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._shapes import check_input_shape, check_n_classes


class MLP(nn.Module):
    """``Linear → ReLU (→ Dropout)`` per hidden width, then a linear output layer.

    Parameters are named ``layers.0.weight``, ``layers.0.bias``, …, ``layers.L.weight`` where
    ``L = len(widths)`` is the output layer. Inputs of any per-sample shape are flattened first.

    Parameters
    ----------
    input_shape:
        Per-sample input shape, e.g. ``(1, 8, 8)`` or ``(40,)``.
    n_classes:
        Number of outputs (logits).
    widths:
        Hidden layer widths; ``()`` gives a linear (logistic-regression) model.
    dropout:
        Dropout probability after each hidden ReLU (0 disables it; then the model has no
        train/eval difference).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        n_classes: int,
        *,
        widths: Sequence[int] = (600, 600),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        shape = check_input_shape(input_shape)
        n_out = check_n_classes(n_classes)
        widths = tuple(int(w) for w in widths)
        if any(w < 1 for w in widths):
            raise ValueError(f"mlp widths must be positive, got {widths}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.input_shape = shape
        self.dropout_p = float(dropout)
        sizes = (math.prod(shape), *widths, n_out)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = nn.Dropout(self.dropout_p) if self.dropout_p > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.layers[:-1]:
            x = self.dropout(torch.relu(layer(x)))
        return self.layers[-1](x)
