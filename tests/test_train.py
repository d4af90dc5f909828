"""The seeded training loop: accuracy, reproducibility, callbacks, schedules, NaN detection."""

import json

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from weightinfo.models import build_model
from weightinfo.training import (
    Callback,
    NonFiniteLossError,
    TrainResult,
    evaluate,
    loss_value,
    train,
)


def blobs(n=240, d=6, k=3, seed=0):
    """``k`` well-separated Gaussian blobs in ``d`` dimensions, integer labels."""
    g = torch.Generator().manual_seed(seed)
    centers = 4.0 * torch.eye(k, d)
    y = torch.arange(n) % k
    x = centers[y] + 0.5 * torch.randn(n, d, generator=g)
    return x, y


def loader(x, y, batch_size=32, shuffle=True, generator=None):
    return DataLoader(
        TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=generator
    )


def net(seed=0, **kwargs):
    torch.manual_seed(seed)
    return build_model("mlp", (6,), 3, **{"widths": (16,), **kwargs})


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_reaches_high_accuracy_and_records_history():
    x, y = blobs()
    xt, yt = blobs(seed=1)
    model = net()
    res = train(
        model,
        loader(x, y),
        epochs=8,
        lr=0.05,
        eval_loader=loader(xt, yt, 100, False),
        progress=False,
    )
    assert isinstance(res, TrainResult)
    assert res.epochs_run == 8 and len(res.history) == 8 and res.steps == 8 * 8
    assert res.final["eval_accuracy"] > 0.97 and res.final["train_accuracy"] > 0.95
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert [h["epoch"] for h in res.history] == list(range(1, 9))
    assert res.history[-1]["steps"] == 64 and all(h["time"] >= 0 for h in res.history)
    assert not res.stopped_early and res.stop_reason is None
    assert not model.training
    d = json.loads(json.dumps(res.to_dict()))
    assert d["config"]["optimizer"] == "sgd" and d["config"]["batch_size"] == 32
    assert d["final"] == res.final


def test_bit_reproducible_with_same_seed_and_different_with_another():
    x, y = blobs()

    def run(seed, train_seed, gen=None):
        model = net(seed, dropout=0.2)
        train(
            model, loader(x, y, generator=gen), epochs=2, lr=0.05, seed=train_seed, progress=False
        )
        return weights(model)

    a, b = run(0, 0), run(0, 0)
    assert same(a, b)
    assert not same(a, run(0, 1))  # same init, other data order / dropout masks
    # a loader with its own generator is re-seeded: reusing it gives the same run
    g = torch.Generator().manual_seed(123)
    assert same(run(0, 5, g), run(0, 5, g))


def test_nested_sampler_generators_are_reseeded():
    """Loaders built like ``Dataset.train_loader`` (BatchSampler over a seeded sampler)."""
    x, y = blobs()

    class Shuffled(torch.utils.data.Sampler):
        def __init__(self, n):
            self.n, self.generator = n, torch.Generator().manual_seed(0)

        def __iter__(self):
            yield from torch.randperm(self.n, generator=self.generator).tolist()

        def __len__(self):
            return self.n

    batches = torch.utils.data.BatchSampler(Shuffled(len(y)), batch_size=32, drop_last=False)
    ld = DataLoader(TensorDataset(x, y), sampler=batches, batch_size=None)
    runs = []
    for _ in range(2):
        model = net()
        train(model, ld, epochs=2, lr=0.05, progress=False)
        runs.append(weights(model))
    assert same(*runs)


class Counter(Callback):
    def __init__(self, stop_at_batch=None, stop_at_epoch=None):
        self.batches, self.epochs, self.steps = 0, 0, []
        self.stop_at_batch, self.stop_at_epoch = stop_at_batch, stop_at_epoch

    def on_batch_end(self, state):
        self.batches += 1
        self.steps.append(state.step)
        assert set(state.metrics) == {"loss", "accuracy", "lr"}
        if self.batches == self.stop_at_batch:
            state.request_stop("enough batches")

    def on_epoch_end(self, state):
        self.epochs += 1
        assert state.metrics["epoch"] == state.epoch == len(state.history)
        return self.epochs == self.stop_at_epoch


def test_callbacks_called_the_right_number_of_times():
    x, y = blobs(n=100)
    cb = Counter()

    class EpochOnly:
        calls = 0

        def on_epoch_end(self, state):
            EpochOnly.calls += 1

    res = train(
        net(), loader(x, y, 25), epochs=3, lr=0.05, callbacks=[cb, EpochOnly()], progress=False
    )
    assert (cb.batches, cb.epochs, EpochOnly.calls) == (12, 3, 3)
    assert cb.steps == list(range(1, 13)) and res.steps == 12


def test_callback_stops_from_batch_hook():
    x, y = blobs(n=100)
    cb = Counter(stop_at_batch=6)
    res = train(net(), loader(x, y, 25), epochs=5, lr=0.05, callbacks=[cb], progress=False)
    assert (cb.batches, cb.epochs) == (6, 2)  # the partial second epoch is still recorded
    assert res.stopped_early and res.stop_reason == "enough batches"
    assert res.epochs_run == 2 and res.steps == 6 and res.history[-1]["steps"] == 6


def test_callback_stops_by_returning_true():
    x, y = blobs(n=100)
    cb = Counter(stop_at_epoch=2)
    res = train(net(), loader(x, y, 25), epochs=5, lr=0.05, callbacks=[cb], progress=False)
    assert res.epochs_run == 2 and res.stopped_early and "Counter.on_epoch_end" in res.stop_reason


def test_callback_without_hooks_rejected():
    x, y = blobs(n=20)
    with pytest.raises(TypeError, match="neither on_batch_end nor on_epoch_end"):
        train(net(), loader(x, y), epochs=1, lr=0.1, callbacks=[object()], progress=False)


def test_nan_loss_names_epoch_and_step():
    x, y = blobs(n=96)

    class Poison:
        def on_batch_end(self, state):
            if state.step == 4:
                with torch.no_grad():
                    state.model.layers[0].weight.fill_(float("nan"))

    with pytest.raises(NonFiniteLossError, match=r"nan at epoch 2, step 5 \(batch 2\)"):
        train(net(), loader(x, y), epochs=3, lr=0.05, callbacks=[Poison()], progress=False)
    with pytest.raises(ValueError, match="epoch 1, step 1"):
        train(net(), loader(x * float("inf"), y), epochs=1, lr=0.05, progress=False)


@pytest.mark.parametrize(
    "schedule, kwargs, expected",
    [
        (None, {}, [0.1, 0.1, 0.1, 0.1]),
        ("step", {"gamma": 0.5, "step_size": 1}, [0.1, 0.05, 0.025, 0.0125]),
        ("step", {}, [0.1, 0.01, 0.001, 0.0001]),  # defaults: step_size 4 // 3 = 1, gamma 0.1
        ("exponential", {"gamma": 0.5}, [0.1, 0.05, 0.025, 0.0125]),
        ("cosine", {}, [0.1, 0.1 * (1 + 2**-0.5) / 2, 0.05, 0.1 * (1 - 2**-0.5) / 2]),
    ],
)
def test_schedule_changes_lr(schedule, kwargs, expected):
    x, y = blobs(n=32)
    res = train(net(), loader(x, y), epochs=4, lr=0.1, schedule=schedule, progress=False, **kwargs)
    assert [h["lr"] for h in res.history] == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs, err",
    [
        ({"loss": "hinge"}, "unknown loss='hinge'"),
        ({"optimizer": "rmsprop"}, "unknown optimizer='rmsprop'"),
        ({"schedule": "linear"}, "unknown schedule='linear'"),
        ({"epochs": 0}, "epochs"),
        ({"lr": float("nan")}, "lr"),
    ],
)
def test_invalid_configuration(kwargs, err):
    x, y = blobs(n=20)
    args = {"epochs": 1, "lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match=err):
        train(net(), loader(x, y), progress=False, **args)


def test_empty_loader_rejected():
    empty = loader(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long), shuffle=False)
    with pytest.raises(ValueError, match="no samples"):
        train(net(), empty, epochs=1, lr=0.1, progress=False)
    with pytest.raises(ValueError, match="no samples"):
        evaluate(net(), empty)


def test_adam_and_binary_bce_with_logits():
    x, y = blobs(k=2)
    torch.manual_seed(0)
    model = build_model("mlp", (6,), 1, widths=(8,))
    res = train(
        model,
        loader(x, y),
        epochs=3,
        lr=0.05,
        optimizer="adam",
        loss="bce_with_logits",
        progress=False,
    )
    assert res.final["train_accuracy"] > 0.9
    ev = evaluate(model, loader(x, y.float()), "bce_with_logits")
    assert ev["accuracy"] > 0.95 and ev["n"] == len(y)


def test_mse_one_hot_for_integer_labels():
    x, y = blobs()
    model = net()
    res = train(model, loader(x, y), epochs=5, lr=0.05, loss="mse", progress=False)
    assert res.final["train_accuracy"] > 0.9
    z = torch.zeros(2, 3)
    assert loss_value("mse", z, torch.tensor([0, 2])).item() == pytest.approx(0.5)
    # regression targets: no accuracy
    reg = evaluate(model, loader(x, torch.zeros(len(y), 3)), "mse")
    assert reg["accuracy"] is None and reg["loss"] > 0


def test_evaluate_matches_manual_and_restores_mode():
    x, y = blobs()
    model = net(dropout=0.5)
    model.train()
    ev = evaluate(model, loader(x, y, 50, False))
    assert model.training
    model.eval()
    with torch.no_grad():
        z = model(x)
    assert ev["loss"] == pytest.approx(torch.nn.functional.cross_entropy(z, y).item(), rel=1e-5)
    assert ev["accuracy"] == pytest.approx((z.argmax(1) == y).float().mean().item())
    assert not model.training and evaluate(model, loader(x, y))["n"] == len(y)


@pytest.mark.parametrize("name", ["cross_entropy", "bce_with_logits", "mse"])
def test_training_loss_is_the_curvature_likelihood(name):
    """train/evaluate minimise and report the mean of the likelihood the curvature code measures."""
    from weightinfo._base.likelihoods import get_loss
    from weightinfo._base.mean_loss import mean_loss

    x, y = blobs()
    z = torch.randn(len(y), 3)
    lik = get_loss(name)
    assert loss_value(name, z, y).item() == pytest.approx(lik.per_sample(z, y).mean().item())
    model = net()
    train(model, loader(x, y), epochs=2, lr=0.05, loss=name, progress=False)
    ev = evaluate(model, loader(x, y, 50, False), name)
    assert ev["accuracy"] > 0.9  # class labels: arg-max accuracy for every loss
    L, n = mean_loss(model, None, (x, y), lik, 64)
    assert n == len(y) and ev["loss"] == pytest.approx(L, rel=1e-5)


def test_per_output_losses_one_hot_class_labels_in_the_likelihood():
    from weightinfo._base.likelihoods import get_loss

    z, y = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    e = torch.nn.functional.one_hot(y, 3).float()
    for name in ("mse", "bce_with_logits"):
        lik = get_loss(name)
        lik.check_targets(z, y)
        assert torch.equal(lik.per_sample(z, y), lik.per_sample(z, e))
        assert torch.equal(lik.grad(z, y), lik.grad(z, e))
        with pytest.raises(ValueError, match="class labels out of range"):
            lik.check_targets(z, y + 1)
        with pytest.raises(ValueError, match="targets shaped like the output"):
            lik.check_targets(z, torch.zeros(4, 2))
        with pytest.raises(ValueError, match=name):
            loss_value(name, z, torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"unknown loss='hinge'"):
        train(net(), loader(*blobs()), epochs=1, lr=0.1, loss="hinge", progress=False)


def test_sgd_momentum_outside_0_1_is_refused():
    """Heavy-ball SGD diverges for μ ≥ 1: train() names the option instead of training."""
    model = torch.nn.Linear(2, 2)
    loader = [(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))]
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="momentum must lie in"):
            train(model, loader, epochs=1, lr=0.1, momentum=bad)
    train(model, loader, epochs=1, lr=0.1, optimizer="adam", momentum=1.5)  # Adam ignores it


def test_train_leaves_the_callers_global_rng_alone():
    """Dropout draws from a fork of the global RNG seeded by ``seed``: the caller's RNG state is the
    same after ``train`` as before, and does not change the run."""
    x, y = blobs()
    a = net(0, dropout=0.2)
    torch.manual_seed(3)
    before = torch.get_rng_state()
    train(a, loader(x, y), epochs=2, lr=0.05, seed=0, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(99)  # another caller state: the same weights
    b = net(0, dropout=0.2)
    train(b, loader(x, y), epochs=2, lr=0.05, seed=0, progress=False)
    assert same(weights(a), weights(b))
