"""Hugging Face ``transformers`` models through ``weightinfo.adapt``: a tiny BERT classifier built from a config
(random weights, nothing downloaded), checked against an independent dense Fisher; and a non-HF model with dict
batches and a dataclass output, to show that the adapter is generic."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev
from torch.utils.data import DataLoader

import weightinfo
from weightinfo.posterior.gaussian import g_cost


def _import_bert():
    """``BertConfig`` and ``BertForSequenceClassification`` without importing torchvision.

    transformers imports torchvision with its image utilities (pulled in by the loss registry of every model)
    whenever the package is installed; the torchvision wheel beside the CPU torch wheel is a CUDA build that
    fails to import. A ``None`` in ``sys.modules`` makes transformers see torchvision as absent (its check is
    ``importlib.util.find_spec``, cached), which a text model never needs; the entry is removed again so that
    other tests see the environment as it is.
    """
    had = "torchvision" in sys.modules
    if not had:
        sys.modules["torchvision"] = None
        # Another import (lightning does) may have asked transformers already: forget its cached answer.
        checks = sys.modules.get("transformers.utils.import_utils")
        for name in ("is_torchvision_available", "is_torchvision_v2_available"):
            getattr(getattr(checks, name, None), "cache_clear", lambda: None)()
    try:
        transformers = pytest.importorskip("transformers")
        BertConfig = transformers.BertConfig
        BertForSequenceClassification = transformers.BertForSequenceClassification
    finally:
        if not had:
            del sys.modules["torchvision"]
    return BertConfig, BertForSequenceClassification


N, T, VOCAB, K = 10, 6, 50, 3


def _bert(dtype=torch.float64):
    BertConfig, BertForSequenceClassification = _import_bert()
    cfg = BertConfig(
        vocab_size=VOCAB,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        num_labels=K,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    return BertForSequenceClassification(cfg).eval().to(dtype)


def _tokens(n=N, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (n, T), generator=g)
    mask = torch.ones(n, T, dtype=torch.long)
    mask[::3, T - 2 :] = 0  # padding on every third sequence
    ids[mask == 0] = 0
    y = torch.randint(0, K, (n,), generator=g)
    return {"input_ids": ids, "attention_mask": mask}, y


def _dense_fisher(model, inputs, y):
    """Exact Fisher (1/N) Σ_i J_iᵀ (diag p_i − p_i p_iᵀ) J_i of the HF model itself, one sample at a time:
    J_i = ∂logits/∂w by ``jacrev`` of ``functional_call`` with the sample's keyword inputs."""
    params = {k: p.detach() for k, p in model.named_parameters()}
    names = list(params)
    F = 0
    for i in range(y.shape[0]):
        kw = {k: v[i : i + 1] for k, v in inputs.items()}

        def logits(p, kw=kw):
            return functional_call(model, p, (), kw).logits[0]

        jac = jacrev(logits)(params)
        J = torch.cat([jac[k].reshape(K, -1) for k in names], dim=1)
        p = torch.softmax(logits(params), -1)
        F = F + J.T @ (torch.diag(p) - torch.outer(p, p)) @ J
    return names, F / y.shape[0]


@pytest.fixture(scope="module")
def bert_case():
    model = _bert()
    inputs, y = _tokens()
    names, F = _dense_fisher(model, inputs, y)
    net = weightinfo.adapt(model)
    return model, net, net.data((inputs, y)), names, F


def test_adapter_shares_parameters_and_reads_logits(bert_case):
    model, net, (X, Y), _, _ = bert_case
    assert X.dtype == torch.int64 and X.shape == (N, 2 * T)
    assert [k for k, _ in net.named_parameters()] == [
        "model." + k for k, _ in model.named_parameters()
    ]
    assert all(a is b for a, b in zip(net.parameters(), model.parameters()))
    inputs, _ = _tokens()
    assert torch.equal(net(X), model(**inputs).logits)
    with pytest.raises(ValueError, match="pad sequences"):
        net.pack(
            {"input_ids": inputs["input_ids"][:, :4], "attention_mask": inputs["attention_mask"]}
        )


@pytest.mark.parametrize("structure", ["diag", "full"])
def test_fisher_matches_dense_reference(bert_case, structure):
    model, net, data, names, F = bert_case
    r = weightinfo.fisher(net, data, kind="exact", structure=structure, batch_size=4)
    assert r.n_samples == N
    assert list(r.param_order) == ["model." + k for k in names]
    diag = torch.cat([r.diag[k].reshape(-1) for k in r.param_order])
    assert torch.allclose(diag, torch.diagonal(F), rtol=0, atol=1e-10)
    assert float(torch.diagonal(F)[: VOCAB * 8].abs().max()) > 0  # the embeddings have curvature
    if structure == "full":
        assert torch.allclose(r.blocks[0].matrix, F, rtol=0, atol=1e-10)


def test_information_fisher_form_is_the_closed_form(bert_case):
    model, net, data, _, F = bert_case
    lam, beta = 0.5, 0.1
    r = weightinfo.information(net, data, beta=beta, prior_scale=lam, batch_size=4)
    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    hand = float((w**2).sum()) / (2 * lam**2) + 0.5 * float(
        g_cost(lam**2 * torch.diagonal(F) / beta).sum()
    )
    assert r.nats == pytest.approx(hand, rel=1e-9)
    assert set(r.per_parameter) == {"model." + k for k, _ in model.named_parameters()}


def test_kfac_mc_and_variational_run(bert_case):
    model, net, data, _, F = bert_case
    names = {"model." + k for k, _ in model.named_parameters()}
    k = weightinfo.fisher(net, data, structure="kfac", batch_size=4)
    assert set(k.param_order) == names and math.isfinite(k.trace())
    mc = weightinfo.fisher(net, data, kind="mc", mc_samples=2, batch_size=4)
    assert mc.trace() > 0 and math.isfinite(mc.trace())
    v = weightinfo.information(
        net, data, beta=0.1, prior_scale=0.5, method="variational", max_epochs=1, batch_size=5
    )
    assert math.isfinite(v.nats) and set(v.per_parameter) == names


def test_certify_end_to_end():
    net = weightinfo.adapt(_bert(torch.float32))
    inputs, y = _tokens(40, seed=3)
    c = weightinfo.certify(
        net,
        net.data((inputs, y)),
        prior_epochs=2,
        posterior_epochs=1,
        prior_scale=0.03,
        mc_samples=10,
        batch_size=8,
    )
    assert 0 <= c.empirical_risk <= c.mc_upper <= c.risk_bound <= 1
    assert c.n_bound == 20 and c.m == 10 and c.kl_nats > 0
    assert c.record["model"]["class"] == "ModelAdapter"
    assert c.record["data"]["bound"]["n"] == 20


def test_effective_information_of_a_layer(bert_case):
    """The weight-noise channel of a hidden layer's activations (token inputs carry no continuous nuisance, so
    ``activation_fisher``'s input transformations do not apply to them)."""
    model, net, data, _, _ = bert_case
    r = weightinfo.information(net, data, beta=0.1, prior_scale=0.5, batch_size=4)
    e = weightinfo.effective_information(
        net, data, r, layers=["model.bert.pooler", "output"], samples=8
    )
    assert set(e.per_layer) == {"model.bert.pooler", "output"}
    assert all(math.isfinite(v) for v in e.per_layer.values())


# ------------------------------------------------------------------ a non-HF model: dict batches, dataclass out


@dataclass
class Scores:
    scores: torch.Tensor
    attention: torch.Tensor


class BagOfWords(nn.Module):
    """Token ids and a float weight per token; returns a dataclass (or a tuple with ``as_tuple``)."""

    def __init__(self, as_tuple=False):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 4)
        self.head = nn.Linear(4, K)
        self.as_tuple = as_tuple

    def forward(self, tokens, weights):
        h = (self.emb(tokens) * weights[..., None]).sum(1)
        out = Scores(self.head(torch.tanh(h)), weights)
        return (out.attention, out.scores) if self.as_tuple else out


def _bag_data(n=12):
    g = torch.Generator().manual_seed(5)
    tokens = torch.randint(0, VOCAB, (n, T), generator=g)
    weights = torch.rand(n, T, generator=g, dtype=torch.float64)
    y = torch.randint(0, K, (n,), generator=g)
    return tokens, weights, y


@pytest.mark.parametrize("as_tuple", [False, True])
def test_generic_dict_model_matches_dense_reference(as_tuple):
    torch.manual_seed(0)
    model = BagOfWords(as_tuple).double()
    net = weightinfo.adapt(model, inputs=("tokens", "weights"), logits=1 if as_tuple else "scores")
    tokens, weights, y = _bag_data()
    # a DataLoader of dict batches with the labels inside, as Hugging Face datasets give them
    rows = [{"tokens": tokens[i], "weights": weights[i], "label": y[i]} for i in range(len(y))]
    loader = net.data(DataLoader(rows, batch_size=5), target="label")
    X, _ = next(iter(loader))
    assert X.dtype == torch.float64 and X.shape == (5, 2 * T)
    r = weightinfo.fisher(net, loader, kind="exact", structure="full")
    params = {k: p.detach() for k, p in model.named_parameters()}
    F = 0
    for i in range(len(y)):

        def logits(p, i=i):
            out = functional_call(model, p, (tokens[i : i + 1], weights[i : i + 1]))
            return (out[1] if as_tuple else out.scores)[0]

        jac = jacrev(logits)(params)
        J = torch.cat([jac[k].reshape(K, -1) for k in params], dim=1)
        p = torch.softmax(logits(params), -1)
        F = F + J.T @ (torch.diag(p) - torch.outer(p, p)) @ J
    assert r.param_order == ["model.emb.weight", "model.head.weight", "model.head.bias"]
    assert torch.allclose(r.blocks[0].matrix, F / len(y), rtol=0, atol=1e-12)
    d = weightinfo.fisher(net, loader, kind="exact", structure="diag")
    assert torch.allclose(
        torch.cat([d.diag[k].reshape(-1) for k in d.param_order]),
        torch.diagonal(F) / len(y),
        atol=1e-12,
    )


def test_adapter_errors():
    net = weightinfo.adapt(BagOfWords(), inputs=("tokens", "weights"), logits="nope")
    tokens, weights, _ = _bag_data(3)
    with pytest.raises(RuntimeError, match="nothing packed"):
        net(torch.zeros(3, 2 * T))
    with pytest.raises(KeyError, match="lacks"):
        net.pack({"tokens": tokens})
    with pytest.raises(ValueError, match="batch size"):
        net.pack({"tokens": tokens, "weights": weights[:2]})
    x = net.pack({"tokens": tokens, "weights": weights})
    with pytest.raises(TypeError, match="no field 'nope'"):
        net(x)
    with pytest.raises(ValueError, match="distinct"):
        weightinfo.adapt(BagOfWords(), inputs=("a", "a"))


def test_map_samples_loops_where_vmap_cannot():
    from weightinfo._base.vmapping import map_samples

    def f(w, x):
        return w * x if bool(x.sum() > 0) else -w * x  # data-dependent control flow

    w, x = torch.tensor(2.0), torch.tensor([[1.0, 2.0], [-1.0, -3.0]])
    out = map_samples(f, (None, 0))(w, x)
    assert torch.equal(out, torch.tensor([[2.0, 4.0], [2.0, 6.0]]))
    assert torch.equal(map_samples(lambda x: 3 * x)(x), 3 * x)  # vmap where it can
    with pytest.raises(ValueError, match="0 or None"):
        map_samples(f, (None, 1))


def test_dict_batches_without_the_adapter_point_to_it():
    tokens, weights, y = _bag_data(4)
    model = weightinfo.adapt(BagOfWords(), inputs=("tokens", "weights"), logits="scores")
    with pytest.raises(TypeError, match="weightinfo.adapt"):
        weightinfo.fisher(model, [({"tokens": tokens, "weights": weights}, y)])
    with pytest.raises(TypeError, match="weightinfo.adapt"):
        weightinfo.fisher(model, [{"tokens": tokens, "weights": weights, "labels": y}])
