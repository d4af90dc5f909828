"""``weightinfo measure``: information in the weights of a small MLP on digits, its report and plots."""

import json

import pytest

from tests.cli_helpers import SMALL, invoke, ok
from weightinfo.checkpoint import train_or_load
from weightinfo.data import load_dataset
from weightinfo.iw import information
from weightinfo.report import to_jsonable

pytestmark = pytest.mark.usefixtures("isolated_cache")

PNG = b"\x89PNG\r\n\x1a\n"


def _png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == PNG


def test_measure_writes_report_equal_to_result(tmp_path):
    out = tmp_path / "out"
    res = ok("measure", *SMALL, "--n-samples", "300", "--mc-samples", "3", "--out", out, "-q")
    for needle in ("layers.0", "layers.1", "share %", "nats/param", "IW =", "E_Q[L_D]", "β·N"):
        assert needle in res.stdout
    report = json.loads((out / "report.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "where.png"]
    assert _png(out / "where.png")

    # The same computation through the library, on the cached checkpoint the command trained.
    ck = train_or_load(
        "digits", "mlp", model_kwargs={"widths": [16]}, epochs=1, lr=0.05, optimizer="sgd"
    )
    ds = load_dataset("digits", seed=0)
    r = information(
        ck.model.eval(),
        (ds.x_train[:300], ds.y_train[:300]),
        beta=1e-6,
        prior_scale=0.1,
        prior_mean="init",
        init_state=ck.init_state_dict,
        mc_samples=3,
        progress=False,
    )
    expected = json.loads(json.dumps(to_jsonable(r.to_dict())))
    assert report == expected
    assert {"nats", "bits", "beta", "per_layer", "expected_loss", "prior_scale"} <= report.keys()
    assert report["beta"] == 1e-6 and report["prior_mean"] == "init"
    assert report["n_samples"] == 300 and report["mc_samples"] == 3
    assert sum(row["nats"] for row in report["per_layer"]) == pytest.approx(report["nats"])
    assert report["conventions"]["units"] == "nats"


def test_measure_with_betas_writes_curve(tmp_path):
    out = tmp_path / "out"
    res = ok(
        "--plain",
        "measure",
        *SMALL,
        "--n-samples",
        "200",
        "--mc-samples",
        "2",
        "--prior-scale",
        "weights",
        "--prior-mean",
        "zero",
        "--betas",
        "1e-4,1e-6,1e-5",
        "--out",
        out,
        "-q",
    )
    assert "loss vs information" in res.stdout and "total" in res.stdout
    curve = json.loads((out / "curve.json").read_text())
    assert [r["beta"] for r in curve["rows"]] == [1e-6, 1e-5, 1e-4]
    nats = [r["nats"] for r in curve["rows"]]
    assert nats == sorted(nats, reverse=True)
    assert curve["settings"]["prior_scale"] == "weights"
    assert curve["settings"]["prior_mean"] == "zero"
    assert _png(out / "curve.png") and _png(out / "where.png")
    report = json.loads((out / "report.json").read_text())
    assert report["nats"] == pytest.approx(curve["rows"][0]["nats"])  # --beta 1e-6 is on the curve


def test_measure_computes_one_curvature_for_the_result_and_the_curve(tmp_path, monkeypatch):
    from weightinfo.iw import points

    ok(
        "measure", *SMALL, "--n-samples", "100", "--out", tmp_path / "warm", "-q"
    )  # trains the model
    calls = []
    real = points._curvature
    monkeypatch.setattr(points, "_curvature", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = tmp_path / "out"
    args = ["--n-samples", "100", "--mc-samples", "2", "--beta", "1e-5", "--betas", "1e-6,1e-5"]
    ok("measure", *SMALL, *args, "--out", out, "-q")
    assert calls == [1]
    curve = json.loads((out / "curve.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert curve["settings"]["curvature_passes"] == 0  # it reused the result's curvature
    assert (
        report["nats"] == curve["rows"][1]["nats"]
        and report["train_loss"] == curve["rows"][1]["train_loss"]
    )


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--beta", "0"], "beta"),
        (["--beta", "-1e-3"], "beta"),
        (["--beta", "nan"], "beta"),
        (["--betas", "1e-3,0"], "betas"),
        (["--betas", "1e-3,x"], "betas"),
        (["--prior-scale", "-1"], "prior-scale"),
        (["--prior-scale", "wide"], "prior-scale"),
    ],
)
def test_bad_values_exit_2_naming_the_option(tmp_path, args, needle):
    result = invoke("measure", *SMALL, *args, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error:") and needle in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "cache").exists()  # rejected before any training


def test_measure_is_listed_in_help():
    assert "measure" in ok("--help").output
    text = ok("measure", "--help").output
    assert "--beta" in text and "--prior-scale" in text and "--betas" in text


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--prior-scale", "1e-300"], "--prior-scale"),
        (["--prior-scale", "1e300"], "--prior-scale"),
    ],
)
def test_out_of_range_prior_scale_is_rejected_before_training(tmp_path, args, needle):
    result = invoke("measure", *SMALL, *args, "--out", tmp_path / "out")
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.startswith("error:") and needle in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--beta", "1e-320"], ("IW is not finite", "beta")),
        (["--prior-scale", "1e20"], ("E_Q[L_D] is not finite", "--prior-scale 1e+20")),
        (["--betas", "1e-6,1e-320"], ("IW is not finite", "beta")),
    ],
)
def test_non_finite_results_are_errors_naming_the_option(tmp_path, args, needles):
    out = tmp_path / "out"
    result = invoke(
        "measure", *SMALL, "--n-samples", "100", "--mc-samples", "2", *args, "--out", out, "-q"
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.startswith("error:")
    for needle in needles:
        assert needle in result.stderr
    assert "IW = nan" not in result.stdout and "not estimated" not in result.output
    assert not out.exists()


def test_not_estimated_only_with_mc_samples_0(tmp_path):
    res = ok(
        "measure", *SMALL, "--n-samples", "100", "--mc-samples", "0", "--out", tmp_path / "o", "-q"
    )
    assert "not estimated (--mc-samples 0)" in res.stdout

    from weightinfo.cli.measure import summary_lines

    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["mc_samples"] == 0

    class Drawn:  # a result whose 8 draws gave NaN: never "not estimated"
        nats, bits, beta, n_samples = 10.0, 14.4, 1e-6, 100
        expected_loss, expected_loss_stderr, expected_loss_quadratic = float("nan"), 0.1, None
        train_loss, lagrangian, mc_samples = 0.1, float("nan"), 8
        extra, prior_scale, prior_mean = {}, {"": 0.1}, "zero"
        method, structure, curvature, convention = "fisher", "diag", "fisher", "corrected"

    assert "not estimated" not in " ".join(summary_lines(Drawn()))


def test_resume_continues_an_interrupted_variational_run(tmp_path, monkeypatch):
    import weightinfo.iw.variational as variational

    args = [*SMALL, "--n-samples", "100", "--method", "variational", "--mc-samples", "2", "-q"]
    reference = ok("measure", *args, "--out", tmp_path / "ref")
    assert "IW =" in reference.stdout

    state = tmp_path / "state" / "fit.pt"
    real, calls = variational._run_epoch, []

    def interrupted(*a, **kw):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C in the third epoch: two complete epochs are saved
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(variational, "_run_epoch", interrupted)
    stopped = invoke("measure", *args, "--out", tmp_path / "run", "--resume", state)
    assert stopped.exit_code != 0 and state.is_file() and not (tmp_path / "run").exists()
    monkeypatch.setattr(variational, "_run_epoch", real)

    ok("measure", *args, "--out", tmp_path / "run", "--resume", state)
    ref = json.loads((tmp_path / "ref" / "report.json").read_text())
    got = json.loads((tmp_path / "run" / "report.json").read_text())
    assert got["extra"]["resumed_from_epoch"] == 2
    for key in ("nats", "per_layer", "expected_loss", "expected_loss_stderr", "prior_scale"):
        assert got[key] == ref[key], key
    assert got["extra"]["history"] == ref["extra"]["history"]


@pytest.mark.parametrize(
    "args,needle",
    [
        ([], "--method variational"),
        (["--method", "variational", "--betas", "1e-6,1e-5"], "--betas"),
        (["--method", "variational", "--resume-dir-instead"], "is a folder"),
    ],
)
def test_resume_is_checked_before_any_work(tmp_path, args, needle):
    state = tmp_path if "--resume-dir-instead" in args else tmp_path / "s.pt"
    args = [a for a in args if a != "--resume-dir-instead"]
    result = invoke("measure", *SMALL, *args, "--out", tmp_path / "o", "--resume", state)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--resume" in result.stderr and needle in result.stderr
    assert not (tmp_path / "cache").exists()  # rejected before training
