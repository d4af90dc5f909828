"""The Fig 1 reproduction (``weightinfo reproduce fig1``): quick run through the command, one number checked."""

import json
import math

import torch

from weightinfo.experiments.fig1 import FIG1, FIG1_QUICK, eval_steps

PNG = b"\x89PNG\r\n\x1a\n"


def test_settings_and_steps():
    assert FIG1["n_steps"] >= 10_000 and FIG1_QUICK["n_steps"] <= 1000
    s = eval_steps(1000, 10)
    assert s[0] == 0 and s[-1] == 1000 and s == sorted(set(s))


def test_quick_run_through_the_command(tmp_path):
    from typer.testing import CliRunner

    from weightinfo.cli import app
    from weightinfo.data import load_dataset

    out = tmp_path / "fig1"
    cli = CliRunner().invoke(app, ["reproduce", "fig1", "--quick", "--out", str(out), "-q"])
    assert cli.exit_code == 0, (cli.output, cli.exception)
    for ext in ("json", "png", "md"):
        assert (out / f"fig1.{ext}").exists()
    assert (out / "fig1.png").read_bytes()[:8] == PNG
    data = json.loads((out / "fig1.json").read_text())
    assert data["quick"] is True and data["made_by"]["quick"] is True
    rows = data["steps"]
    assert rows[0]["step"] == 0 and rows[-1]["step"] == FIG1_QUICK["n_steps"]
    for r in rows:
        for k in ("logdet", "trace", "h_minus_f_rel", "loss", "accuracy", "boundary_change"):
            assert k in r
        assert math.isfinite(r["logdet"])
    assert data["analysis"]["late"]["verdict"]
    assert (out / "fig1.md").read_text().startswith("**QUICK SMOKE TEST")

    # independent check: tr F at step 0 = (1/N) Σ σ(1−σ) ‖∇_w f(x_i)‖², one autograd call per point
    s = data["settings"]
    h = s["hidden"]
    net = torch.nn.Sequential(
        torch.nn.Linear(2, h), torch.nn.Tanh(), torch.nn.Linear(h, h), torch.nn.Tanh(),
        torch.nn.Linear(h, 1),
    ).double()  # fmt: skip
    torch.nn.utils.vector_to_parameters(
        torch.tensor(data["w0"], dtype=torch.float64), net.parameters()
    )
    assert sum(p.numel() for p in net.parameters()) == s["n_params"] == 337
    ds = load_dataset("two-moons", seed=s["data_seed"], n_samples=s["n_samples"])
    tr = 0.0
    for xi in ds.x_train.double():
        f = net(xi[None])[0, 0]
        grads = torch.autograd.grad(f, list(net.parameters()))
        p = torch.sigmoid(f).item()
        tr += p * (1 - p) * sum(float((g**2).sum()) for g in grads)
    tr /= len(ds.x_train)
    assert abs(rows[0]["trace"] - tr) <= 1e-8 * tr
