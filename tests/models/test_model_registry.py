"""Registry errors and dataset-based model suggestions."""

import pytest
import torch

from weightinfo.models import MODELS, ModelSuggestion, build_model, default_model_for


def test_models_list():
    assert MODELS == ("mlp", "lenet", "allcnn", "resnet18")


def test_unknown_model_names_choices():
    with pytest.raises(ValueError, match="unknown model='vgg'.*'mlp'"):
        build_model("vgg", (1, 8, 8), 10)


def test_unknown_kwarg_names_model():
    with pytest.raises(TypeError, match="model 'lenet'.*widths"):
        build_model("lenet", (1, 8, 8), 10, widths=(3,))


@pytest.mark.parametrize("name", ["lenet", "allcnn", "resnet18"])
def test_conv_nets_reject_flat_inputs(name):
    with pytest.raises(ValueError, match=f"{name} expects image inputs"):
        build_model(name, (40,), 10)


@pytest.mark.parametrize(
    "args, err",
    [
        (("lenet", (1, 3, 3), 10), "at least 4x4"),
        (("mlp", (2,), 0), "n_classes"),
        (("mlp", (0, 2), 3), "input_shape"),
        (("allcnn", (1, 8, 8), 3, {"width": 0}), "width"),
        (("mlp", (2,), 3, {"dropout": 1.0}), "dropout"),
    ],
)
def test_invalid_arguments(args, err):
    kwargs = args[3] if len(args) > 3 else {}
    with pytest.raises(ValueError, match=err):
        build_model(*args[:3], **kwargs)


def test_default_model_for_known_datasets():
    shapes = {
        "digits": (1, 8, 8),
        "mnist": (1, 28, 28),
        "fashion-mnist": (1, 28, 28),
        "mnist1d": (40,),
        "two-moons": (2,),
    }
    for ds, shape in shapes.items():
        s = default_model_for(ds)
        assert isinstance(s, ModelSuggestion) and s.name in MODELS
        assert build_model(s.name, shape, 10, **s.kwargs)(torch.zeros(1, *shape)).shape == (1, 10)
    assert default_model_for("digits") == ("mlp", {"widths": (256, 256)})
    assert default_model_for("binary-mnist1d") == default_model_for("mnist1d")
    default_model_for("digits").kwargs["widths"] = None  # a copy: the table is not mutated
    assert default_model_for("digits").kwargs["widths"] == (256, 256)
    with pytest.raises(ValueError, match="no default model"):
        default_model_for("imagenet")


def test_lenet_dropout_acts_in_training_mode_only():
    import torch

    from weightinfo.models import build_model, count_parameters

    torch.manual_seed(0)
    plain = build_model("lenet", (1, 8, 8), 3)
    torch.manual_seed(0)
    net = build_model("lenet", (1, 8, 8), 3, dropout=0.5)
    assert count_parameters(net) == count_parameters(plain)
    x = torch.randn(4, 1, 8, 8)
    net.eval()
    assert torch.equal(net(x), plain.eval()(x))  # eval mode: no dropout
    net.train()
    torch.manual_seed(1)
    a = net(x)
    assert not torch.equal(a, net(x))
    with pytest.raises(ValueError, match="dropout"):
        build_model("lenet", (1, 8, 8), 3, dropout=1.0)
