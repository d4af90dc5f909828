"""ResNet-18 with the CIFAR-style stem (3x3 conv, stride 1, no max-pool)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._shapes import check_image_shape, check_n_classes, scale_width


class BasicBlock(nn.Module):
    """Two 3x3 ``conv → BatchNorm`` layers with a residual connection, ReLU after the sum.

    When the stride or the channel count changes, the shortcut is a 1x1 ``conv → BatchNorm``
    named ``downsample`` (``downsample.0`` conv, ``downsample.1`` BatchNorm), as in torchvision.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18: stem, four stages of two :class:`BasicBlock` each, global average pool, linear.

    Stem: ``conv1`` (3x3, stride 1) → ``bn1`` → ReLU, no max-pool (CIFAR variant), accepting any
    number of input channels (1 for MNIST-type data). Stage widths are ``(64, 128, 256, 512)``
    times ``width``; stages 2–4 downsample by 2. ``width=1`` has 11.2M parameters for 10 classes;
    ``width=0.125`` about 0.18M. Adaptive average pooling makes any image size >= 1 work.

    Parameter names follow torchvision: ``conv1``, ``bn1``, ``layer<s>.<b>.conv1/bn1/conv2/bn2``,
    ``layer<s>.0.downsample.0/1``, ``fc``. BatchNorm makes the output depend on train/eval mode:
    measure curvature in eval mode (see :func:`weightinfo.models.set_eval`).
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int, *, width: float = 1.0) -> None:
        super().__init__()
        c, h, w = check_image_shape("resnet18", input_shape, min_size=1)
        n_out = check_n_classes(n_classes)
        self.input_shape = (c, h, w)
        widths = [scale_width(base, width) for base in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(c, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        c_in = widths[0]
        for s, c_out in enumerate(widths):
            stride = 1 if s == 0 else 2
            stage = nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1))
            self.add_module(f"layer{s + 1}", stage)
            c_in = c_out
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.pool(x).flatten(1))
