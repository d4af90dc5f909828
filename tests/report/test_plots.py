"""weightinfo.report.plots: PNG figures of where the information is and of the loss-vs-information curve."""

import os

import pytest
import torch
from torch import nn

from weightinfo.iw import information
from weightinfo.iw.curve import information_curve
from weightinfo.report import plots

PNG = b"\x89PNG\r\n\x1a\n"
D64 = torch.float64


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).double().eval()


def _conv(n_conv=2):
    torch.manual_seed(0)
    layers, c = [], 1
    for _ in range(n_conv):
        layers += [nn.Conv2d(c, 3, 3, padding=1), nn.ReLU()]
        c = 3
    layers += [nn.Flatten(), nn.Linear(c * 16, 3)]
    return nn.Sequential(*layers).double().eval()


def _data(n=12):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 4, 4, generator=g, dtype=D64), torch.randint(0, 3, (n,), generator=g)


def _result(model):
    return information(model, _data(), beta=1e-2, prior_scale=0.5, mc_samples=2, progress=False)


@pytest.fixture
def axes_count(monkeypatch):
    """Record how many axes each saved figure has."""
    counts = []
    real = plots.save_figure

    def save(fig, path):
        counts.append(len(fig.axes))
        return real(fig, path)

    monkeypatch.setattr(plots, "save_figure", save)
    return counts


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == PNG


def test_where_mlp_writes_png_with_unit_strips(tmp_path, axes_count):
    path = plots.plot_where(_result(_mlp()), tmp_path / "out" / "where.png")
    assert path == tmp_path / "out" / "where.png" and _is_png(path)
    assert axes_count == [1 + 2]  # layer bars + one strip per Linear
    assert os.listdir(path.parent) == ["where.png"]  # no temporary file left


def test_where_conv_gets_heat_maps(tmp_path, axes_count):
    r = _result(_conv())
    maps, n = plots._maps(r, 6)
    assert n == 2 and [m[0] for m in maps] == ["conv", "conv"]
    assert tuple(maps[1][3].shape) == (3, 3)  # filters × input channels
    torch.testing.assert_close(maps[1][3].sum(), r.per_parameter["2.weight"].sum())
    assert _is_png(plots.plot_where(r, tmp_path / "where.png"))
    assert axes_count == [1 + 2 + 2]  # bars + 2 heat maps + their colour bars


def test_where_caps_conv_maps(tmp_path, axes_count):
    r = _result(_conv(n_conv=4))
    assert _is_png(plots.plot_where(r, tmp_path / "where.png", max_maps=3))
    assert axes_count == [1 + 3 + 3]


def test_curve_writes_png(tmp_path):
    model = _mlp()
    c = information_curve(
        model, _data(), betas=[1e-4, 1e-3, 1e-2, 1e-1], prior_scale=0.5, mc_samples=2
    )
    path = plots.plot_curve(c, tmp_path / "curve.png", title="tiny")
    assert _is_png(path)
    c0 = information_curve(model, _data(), betas=[1e-3, 1e-2], prior_scale=0.5, mc_samples=0)
    assert _is_png(plots.plot_curve(c0, tmp_path / "curve0.png"))  # quadratic model only
    assert sorted(os.listdir(tmp_path)) == ["curve.png", "curve0.png"]
