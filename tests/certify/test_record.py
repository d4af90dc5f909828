"""What a certificate certifies (its record) and ``verify_certificate`` / ``weightinfo certify --verify``."""

from __future__ import annotations

import json
import shlex

import pytest
import torch

import weightinfo
from tests.certify.cases import digits_mlp, split_kwargs
from tests.cli_helpers import SMALL, invoke, ok
from weightinfo.certificates import verify_certificate
from weightinfo.certificates.record import content_hash

pytestmark = pytest.mark.usefixtures("isolated_cache")

SETTINGS = dict(prior_epochs=1, posterior_epochs=1, mc_samples=10, seed=0)


@pytest.fixture(scope="module")
def cert():
    ds, model, init = digits_mlp(16)
    kw = split_kwargs(ds, init)
    return weightinfo.certify(model, prior_scale=[0.02, 0.03], **kw, **SETTINGS)


def test_content_hash_sees_values_dtype_shape_and_order():
    x = torch.arange(6.0)
    assert content_hash(x) == content_hash(x.clone())
    assert content_hash(x) != content_hash(x.double())
    assert content_hash(x) != content_hash(x.reshape(2, 3))
    assert content_hash(x) != content_hash(x.flip(0))
    assert content_hash(x, None) != content_hash(x)
    assert content_hash(x.bfloat16()) != content_hash(x.half())  # dtypes numpy lacks hash too


def test_record_names_data_split_weights_and_options(cert):
    r = cert.to_dict()["record"]
    ds, _, _ = digits_mlp(16)
    pi, bi = ds.prior_bound_split(0.5, 0)
    assert r["data"]["bound"] == {
        "n": len(bi),
        "hash": content_hash(ds.x_train[bi], ds.y_train[bi]),
    }
    assert r["indices"]["prior"]["hash"] == content_hash(torch.as_tensor(pi).to(torch.int64))
    assert r["model"]["class"] == "MLP" and r["model"]["n_params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert set(r["weights"]) == {"prior_mean", "posterior_mean", "posterior_variance"}
    assert r["options"]["prior"]["scale"] == [0.02, 0.03] and r["options"]["mc"]["samples"] == 10
    assert r["options"]["prior"]["init_state"] == {
        "hash": r["options"]["prior"]["init_state"]["hash"]
    }
    assert r["versions"]["torch"] == str(torch.__version__)
    json.dumps(cert.to_dict())  # JSON-ready as is


def test_a_certificate_verifies_and_a_tampered_one_does_not(cert):
    d = cert.to_dict()
    v = verify_certificate(d)
    assert v.ok, str(v)
    assert d["k_union"] == 2  # the λ grid is paid for, and the check sees it
    for key, change in [
        ("risk_bound", -1e-3),
        ("mc_upper", -1e-3),
        ("kl_nats", -1.0),
        ("empirical_risk", -1e-3),
        ("n_bound", 100),
        ("delta", 0.01),
    ]:
        bad = dict(d, **{key: d[key] + change})
        assert not verify_certificate(bad).ok, key
    assert not verify_certificate(dict(d, k_union=1)).ok  # fewer certificates paid than the grid
    other = "standard" if d["mc"] == "per_example" else "per_example"
    assert not verify_certificate(dict(d, mc=other)).ok  # the other estimator's û differs
    missing = {k: v for k, v in d.items() if k != "m"}
    assert not verify_certificate(missing).ok


def test_per_example_certificates_verify():
    ds, model, init = digits_mlp(16)
    c = weightinfo.certify(model, mc="per_example", **split_kwargs(ds, init), **SETTINGS)
    assert verify_certificate(c.to_dict()).ok


def test_cli_records_the_dataset_and_command_and_verifies(tmp_path):
    out = tmp_path / "c"
    ok(
        "certify",
        *SMALL,
        "--prior-epochs",
        "1",
        "--posterior-epochs",
        "1",
        "--mc-samples",
        "10",
        "--out",
        out,
    )
    path = out / "certificate.json"
    rec = json.loads(path.read_text())["record"]
    assert rec["dataset"] == "digits" and rec["split"]["seed"] == 0
    words = shlex.split(rec["command"])
    given = words[words.index("certify") + 1 :]
    pairs = dict(zip(given[::2], given[1::2]))
    assert words[words.index("certify") - 1] == "weightinfo" and pairs == {
        "--dataset": "digits",
        "--widths": "16",
        "--epochs": "1",
        "--prior-epochs": "1",
        "--posterior-epochs": "1",
        "--mc-samples": "10",
        "--out": str(out),
    }
    assert "consistent" in ok("certify", "--verify", path).output
    d = json.loads(path.read_text())
    d["risk_bound"] -= 0.01
    (tmp_path / "bad.json").write_text(json.dumps(d))
    r = invoke("certify", "--verify", tmp_path / "bad.json")
    assert r.exit_code == 2 and "NOT consistent" in r.output
    (tmp_path / "text.json").write_text("not json")
    r = invoke("certify", "--verify", tmp_path / "text.json")
    assert r.exit_code == 2 and "cannot read a certificate" in r.output
    r = invoke("certify", *SMALL)
    assert r.exit_code == 2 and "--out FOLDER is required" in r.output
