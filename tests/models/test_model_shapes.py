"""Forward shapes, parameter counts and parameter names of the reference networks."""

import math

import pytest
import torch

from weightinfo.models import MODELS, build_model, count_parameters

SMALL = {
    "mlp": {"widths": (32, 16)},
    "lenet": {},
    "allcnn": {"width": 0.125},
    "resnet18": {"width": 0.125},
}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_forward_shape_and_backward(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape, 10, **SMALL[name])
    x = torch.randn(3, *shape)
    out = model(x)
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("shape", [(40,), (2,), (1, 8, 8)])
def test_mlp_any_input_and_exact_count(shape):
    model = build_model("mlp", shape, 3, widths=(7, 5))
    assert model(torch.zeros(4, *shape)).shape == (4, 3)
    d = math.prod(shape)
    assert count_parameters(model) == (d * 7 + 7) + (7 * 5 + 5) + (5 * 3 + 3)


def test_mlp_default_widths_and_linear_model():
    model = build_model("mlp", (1, 28, 28), 10)
    assert [m.out_features for m in model.layers] == [600, 600, 10]
    linear = build_model("mlp", (2,), 2, widths=())
    assert count_parameters(linear) == 6


def test_parameter_names_are_readable_and_stable():
    names = {
        n: [k for k, _ in build_model(n, (1, 8, 8), 10, **SMALL[n]).named_parameters()]
        for n in MODELS
    }
    assert names["mlp"] == [f"layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")]
    assert names["lenet"] == [
        f"{m}.{p}" for m in ("conv1", "conv2", "fc1", "fc2", "fc3") for p in ("weight", "bias")
    ]
    assert names["allcnn"][:3] == ["blocks.0.conv.weight", "blocks.0.bn.weight", "blocks.0.bn.bias"]
    assert names["allcnn"][-3:] == [
        "blocks.8.conv.weight",
        "blocks.8.bn.weight",
        "blocks.8.bn.bias",
    ]
    assert "layer2.0.downsample.0.weight" in names["resnet18"]
    assert names["resnet18"][0] == "conv1.weight" and names["resnet18"][-1] == "fc.bias"


def test_parameter_counts_are_sane():
    lenet = count_parameters(build_model("lenet", (1, 28, 28), 10))
    assert 60_000 <= lenet <= 200_000
    assert lenet == 107_786
    assert count_parameters(build_model("lenet", (1, 8, 8), 10)) == 21_386
    with torch.device("meta"):  # full-size nets: no memory, no RNG
        resnet = build_model("resnet18", (3, 32, 32), 10)
        allcnn = build_model("allcnn", (3, 32, 32), 10)
    assert count_parameters(resnet) == 11_173_962  # the well-known CIFAR ResNet-18 size
    # 3x3 convs 3-96-96-192-192-192-192-192, 1x1 convs 192-192-10, no conv bias, BN affine.
    convs = 9 * (3 * 96 + 96 * 96 + 96 * 192 + 4 * 192 * 192) + 192 * 192 + 192 * 10
    bn = 2 * (2 * 96 + 6 * 192 + 10)
    assert count_parameters(allcnn) == convs + bn


def test_width_scales_channels_but_not_classes():
    small = build_model("allcnn", (1, 8, 8), 7, width=0.25)
    assert [b.conv.out_channels for b in small.blocks] == [24, 24, 48, 48, 48, 48, 48, 48, 7]
    assert [k.conv.kernel_size[0] for k in small.blocks] == [3] * 7 + [1, 1]
    assert [k.conv.stride[0] for k in small.blocks] == [1, 1, 2, 1, 1, 2, 1, 1, 1]
    res = build_model("resnet18", (1, 8, 8), 7, width=0.25)
    assert [res.layer1[0].conv1.out_channels, res.layer4[1].conv2.out_channels] == [16, 128]
    assert res.fc.out_features == 7
    assert res.conv1.kernel_size == (3, 3) and res.conv1.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in res.modules())


def test_allcnn_final_relu_option():
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    relu = build_model("allcnn", (1, 8, 8), 5, width=0.125).eval()
    assert (relu(x) >= 0).all()
    torch.manual_seed(0)
    plain = build_model("allcnn", (1, 8, 8), 5, width=0.125, final_relu=False).eval()
    assert (plain(x) < 0).any()
