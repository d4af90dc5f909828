"""``weightinfo._base.provenance``: the commit and command recorded in every results file."""

import subprocess
import sys

import pytest

from weightinfo._base import provenance


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod.py").write_text("x = 1\n")
    (tmp_path / "results.md").write_text("old\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    return tmp_path


def test_code_commit_is_head_and_marks_uncommitted_package_changes(repo):
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert provenance.code_commit(repo / "pkg") == head
    # An output written elsewhere in the tree (an earlier run into docs/results) is not the code.
    (repo / "results.md").write_text("new\n")
    assert provenance.code_commit(repo / "pkg") == head
    (repo / "pkg" / "mod.py").write_text("x = 2\n")
    assert provenance.code_commit(repo / "pkg") == head + "+dirty"
    _git(repo, "checkout", "-q", "--", "pkg/mod.py")
    (repo / "pkg" / "new.py").write_text("y = 1\n")  # untracked code counts too
    assert provenance.code_commit(repo / "pkg") == head + "+dirty"


def test_code_commit_outside_git_is_unknown(tmp_path):
    assert provenance.code_commit(tmp_path) == "unknown"


def test_current_command_module_script_and_environment():
    env = {"OMP_NUM_THREADS": "1", "WEIGHTINFO_DATA": "/data dir", "HOME": "/x"}
    cmd = provenance.current_command(["experiments/certificates.py", "--which", "a b"], env)
    assert (
        cmd
        == "OMP_NUM_THREADS=1 WEIGHTINFO_DATA='/data dir' python experiments/certificates.py --which 'a b'"
    )
    assert (
        provenance.current_command(["/venv/bin/weightinfo", "reproduce"], {})
        == "weightinfo reproduce"
    )


def test_current_command_of_this_process_names_its_arguments(monkeypatch):
    monkeypatch.setattr(sys, "argv", [sys.argv[0], "--flag"])
    assert provenance.current_command().endswith(" --flag")


def test_made_by_and_its_line():
    info = provenance.made_by(quick=True, command="weightinfo reproduce x")
    assert set(info) == {"commit", "command", "threads", "quick", "cpu_capability"}
    assert info["quick"] is True and info["threads"] >= 1 and info["commit"]
    line = provenance.made_by_line(dict(info, commit="abc", threads=1, cpu_capability="AVX2"))
    assert line.startswith(
        "Made by `weightinfo reproduce x` at commit abc (1 torch thread, AVX2 kernels)."
    )
    assert "smoke-test" in line
    assert "smoke-test" not in provenance.made_by_line(dict(info, quick=False))


def test_report_names_the_commit_at_the_start_of_the_run(tmp_path, monkeypatch):
    """A long run records the checkout as it started, not as it is when the report is written."""
    import json

    from weightinfo.certificates import posterior_fit
    from weightinfo.experiments.certificates import run_digits

    head = {"sha": "start"}
    monkeypatch.setattr(provenance, "code_commit", lambda *a: head["sha"])
    train_prior_mean = posterior_fit.train_prior_mean

    def train_then_commit(*args, **kwargs):  # someone commits while the run goes on
        w0 = train_prior_mean(*args, **kwargs)
        head["sha"] = "moved"
        return w0

    monkeypatch.setattr(posterior_fit, "train_prior_mean", train_then_commit)
    run_digits(tmp_path, quick=True, log=lambda *_: None)
    assert head["sha"] == "moved"
    made = json.loads((tmp_path / "certificates_digits.json").read_text())["made_by"]
    assert made["commit"] == "start" and made["quick"] is True
    assert made["threads"] >= 1 and made["command"]
    md = (tmp_path / "certificates_digits.md").read_text().splitlines()
    line = next(x for x in md if x.startswith("Made by"))  # after the quick banner and the title
    assert line.startswith(f"Made by `{made['command']}` at commit start (")
    assert "smoke-test" in line
