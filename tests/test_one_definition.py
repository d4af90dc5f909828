"""One definition of to_jsonable, progress_enabled and of each hash name (issue 8, "one definition of each thing")."""

import sys

import numpy as np
import pytest
import torch

import weightinfo.checkpoint as checkpoint
import weightinfo.cli._common as cli_common
import weightinfo.iw._resume as resume
import weightinfo.report as report
import weightinfo.report.io as report_io
import weightinfo.training as training
from weightinfo._base.jsonable import to_jsonable
from weightinfo._base.progress import progress_enabled
from weightinfo.data import load_dataset


def test_report_and_checkpoint_use_the_base_to_jsonable():
    assert report_io.to_jsonable is to_jsonable
    assert report.to_jsonable is to_jsonable
    assert checkpoint.to_jsonable is to_jsonable


def test_to_jsonable_covers_every_former_variant():
    # checkpoint metadata: positional ``where``, errors naming it
    with pytest.raises(TypeError, match=r"metrics\['f'\] .* cannot be stored as JSON"):
        to_jsonable({"f": object()}, "metrics")
    # report: non-finite as strings on request, numpy / torch scalars as numbers
    assert to_jsonable([float("nan"), np.float32(0.5), torch.tensor(2)], nonfinite="string") == [
        "NaN",
        0.5,
        2,
    ]
    # dataset metadata: unknown values as their text instead of an error
    assert to_jsonable({"a": complex(1, 2), "b": (1, np.int64(2))}, default=str) == {
        "a": "(1+2j)",
        "b": [1, 2],
    }


def test_dataset_metadata_goes_through_to_jsonable():
    ds = load_dataset("digits", seed=0)
    d = ds.to_dict()
    assert d["info"] == to_jsonable(ds.info, default=str)
    assert not hasattr(sys.modules["weightinfo.data.dataset"], "_jsonable")


def test_one_progress_rule(monkeypatch):
    assert training.progress_enabled is progress_enabled
    assert not hasattr(training, "_progress_enabled")

    class Tty:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    assert progress_enabled(True) and not progress_enabled(False)
    assert cli_common.progress_enabled(quiet=False) and not cli_common.progress_enabled(quiet=True)
    monkeypatch.setattr(sys, "stderr", None)
    assert not progress_enabled(True)


def test_config_hash_means_one_thing():
    assert not hasattr(resume, "config_hash")
    assert callable(resume.state_fingerprint)
    assert len(checkpoint.config_hash({"a": 1})) == 16
