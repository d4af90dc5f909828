"""``weightinfo activations`` and ``weightinfo measure --activations`` (issue 10 §4)."""

import json
import math

import pytest

from tests.cli_helpers import SMALL, invoke, ok

pytestmark = pytest.mark.usefixtures("isolated_cache")


def test_activations_writes_the_per_layer_table_json_and_plot(tmp_path):
    out = tmp_path / "act"
    res = ok(
        "activations",
        *SMALL,
        "--n-inputs",
        16,
        "--nuisance",
        "brightness,translate-x",
        "--out",
        out,
    )
    assert "I_eff nats" in res.stdout and "F[translate-x]" in res.stdout
    d = json.loads((out / "activations.json").read_text())
    assert d["options"]["layers"] == ["layers.0", "layers.1"]  # every Linear, in order
    assert d["options"]["nuisances"] == ["brightness", "translate-x"]
    eff = d["effective_information"]
    ceiling = math.log(16)
    for layer in d["options"]["layers"]:
        assert 0 <= eff["per_layer"][layer] <= ceiling + 1e-9
        for nuis in ("brightness", "translate-x"):
            value = d["activation_fisher"][nuis]["per_layer"][layer]
            assert math.isfinite(value) and value > 0
    assert d["information_nats"] > 0 and "weightinfo activations" in d["made_by"]["command"]
    assert (out / "activations.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, named",
    [(["--nuisance", "wobble"], "wobble"), (["--layers", "nope"], "nope")],
)
def test_activations_bad_names_are_named_errors(tmp_path, args, named):
    res = invoke("activations", *SMALL, *args, "--out", tmp_path / "x")
    assert res.exit_code == 2, (res.output, res.exception)
    assert named in res.stderr and "Traceback" not in res.output
    assert not (tmp_path / "x").exists()


def test_measure_activations_adds_its_section(tmp_path):
    out = tmp_path / "m"
    res = ok("measure", *SMALL, "--activations", "--out", out)
    assert "activations (noise of Q*" in res.stdout
    act = json.loads((out / "activations.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert "effective_information" not in report  # report.json stays InformationResult.to_dict()
    assert set(act["activation_fisher"]) == {"translate-x"}  # digits are 1x8x8 images
    assert act["layers"] == ["layers.0", "layers.1"]
