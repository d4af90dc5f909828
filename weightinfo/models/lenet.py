"""LeNet-5-style convolutional network for small grey-scale (or colour) images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._shapes import check_image_shape, check_n_classes


class LeNet(nn.Module):
    """Two ``conv 5x5 → ReLU → maxpool 2`` stages, then ``fc1 → ReLU → fc2 → ReLU → fc3``.

    Both convolutions are zero-padded ("same", padding 2), so only the pools shrink the image:
    an ``H x W`` input gives ``channels[1] x (H // 4) x (W // 4)`` features. This makes the same
    network work for 8x8 digits and 28x28 MNIST. With the defaults (channels ``(6, 16)``, hidden
    ``(120, 84)``) it has 107,786 parameters on 1x28x28 inputs with 10 classes and 21,386 on 1x8x8.

    ``dropout`` > 0 drops the inputs of ``fc1`` and ``fc2`` with that probability in training mode (eval mode
    is deterministic). Parameter names: ``conv1``, ``conv2``, ``fc1``, ``fc2``, ``fc3`` (``.weight`` /
    ``.bias``).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        n_classes: int,
        *,
        channels: Sequence[int] = (6, 16),
        hidden: Sequence[int] = (120, 84),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, h, w = check_image_shape("lenet", input_shape, min_size=4)
        n_out = check_n_classes(n_classes)
        c1, c2 = (int(v) for v in channels)
        h1, h2 = (int(v) for v in hidden)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.input_shape = (c, h, w)
        self.dropout_p = float(dropout)
        self.dropout = nn.Dropout(self.dropout_p) if self.dropout_p > 0 else nn.Identity()
        self.conv1 = nn.Conv2d(c, c1, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5, padding=2)
        self.fc1 = nn.Linear(c2 * (h // 4) * (w // 4), h1)
        self.fc2 = nn.Linear(h1, h2)
        self.fc3 = nn.Linear(h2, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(self.dropout(x.flatten(1))))
        x = torch.relu(self.fc2(self.dropout(x)))
        return self.fc3(x)
