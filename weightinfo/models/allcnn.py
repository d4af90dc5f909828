"""All-CNN (Springenberg et al. 2015) with BatchNorm, as used in "Critical Learning Periods"."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._shapes import check_image_shape, check_n_classes, scale_width

# (out_channels, kernel, stride) of the 9 conv blocks; ``None`` marks the n_classes output block.
ALLCNN_BLOCKS: tuple[tuple[int | None, int, int], ...] = (
    (96, 3, 1),
    (96, 3, 1),
    (192, 3, 2),
    (192, 3, 1),
    (192, 3, 1),
    (192, 3, 2),
    (192, 3, 1),
    (192, 1, 1),
    (None, 1, 1),
)


class ConvBlock(nn.Module):
    """``conv (no bias) → BatchNorm → ReLU``; ``relu=False`` drops the ReLU."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, *, relu: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU() if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class AllCNN(nn.Module):
    """Nine conv blocks then global average pooling; the pooled last block gives the logits.

    Channels ``(96, 96, 192, 192, 192, 192, 192, 192, n_classes)``, kernels
    ``(3, 3, 3, 3, 3, 3, 3, 1, 1)``, strides ``(1, 1, 2, 1, 1, 2, 1, 1, 1)``, 3x3 convs padded by 1.
    Every block is ``conv → BatchNorm → ReLU``, including the last one by default
    (``final_relu=True``), as in All-CNN-C and the Critical-Learning-Periods reconstructions; the
    logits are then non-negative averages. ``final_relu=False`` ends on ``conv → BatchNorm``.
    ``width`` multiplies every channel count except the final ``n_classes``. Convs have no bias
    (BatchNorm's shift plays that role). A 32x32 input is reduced to 8x8, a 28x28 one to 7x7,
    an 8x8 one to 2x2 before pooling.

    Parameter names: ``blocks.<i>.conv.weight``, ``blocks.<i>.bn.weight``, ``blocks.<i>.bn.bias``
    for ``i = 0..8``. BatchNorm makes the output depend on train/eval mode: measure curvature in
    eval mode (see :func:`weightinfo.models.set_eval`).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        n_classes: int,
        *,
        width: float = 1.0,
        final_relu: bool = True,
    ) -> None:
        super().__init__()
        c, h, w = check_image_shape("allcnn", input_shape, min_size=1)
        n_out = check_n_classes(n_classes)
        self.input_shape = (c, h, w)
        blocks = []
        c_in = c
        for i, (c_out, kernel, stride) in enumerate(ALLCNN_BLOCKS):
            last = i == len(ALLCNN_BLOCKS) - 1
            c_out = n_out if c_out is None else scale_width(c_out, width)
            blocks.append(ConvBlock(c_in, c_out, kernel, stride, relu=final_relu or not last))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.pool(x).flatten(1)
