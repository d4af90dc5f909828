"""Train/eval-mode behaviour: BatchNorm and Dropout are measured in eval mode."""

import pytest
import torch
from torch import nn

from weightinfo.models import (
    build_model,
    eval_mode,
    has_batchnorm,
    has_dropout,
    is_mode_dependent,
    set_eval,
)


def test_mode_detection():
    assert has_batchnorm(build_model("allcnn", (1, 8, 8), 3, width=0.125))
    assert has_batchnorm(build_model("resnet18", (1, 8, 8), 3, width=0.125))
    assert not has_batchnorm(build_model("lenet", (1, 8, 8), 3))
    assert not is_mode_dependent(build_model("mlp", (4,), 3, widths=(5,)))
    drop = build_model("mlp", (4,), 3, widths=(5,), dropout=0.5)
    assert has_dropout(drop) and is_mode_dependent(drop) and not has_batchnorm(drop)
    assert not has_dropout(nn.Sequential(nn.Dropout(0.0)))


@pytest.mark.parametrize("name", ["allcnn", "resnet18"])
def test_eval_mode_batchnorm_is_per_sample(name):
    torch.manual_seed(0)
    model = build_model(name, (1, 8, 8), 4, width=0.125)
    x = torch.randn(8, 1, 8, 8)
    model(x)  # update running statistics once
    set_eval(model)
    assert not model.training
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:1], model(x[:1]))
        model.train()
        assert not torch.allclose(model(x)[:1], model(x[:2])[:1])


def test_set_eval_returns_model_and_eval_mode_restores_flags():
    model = build_model("mlp", (4,), 3, widths=(5,), dropout=0.5)
    model.train()
    model.dropout.eval()  # mixed flags must come back exactly
    with eval_mode(model) as m:
        assert m is model and not any(mod.training for mod in model.modules())
    assert model.training and not model.dropout.training
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError
    assert model.training
    assert set_eval(model) is model and not model.training
