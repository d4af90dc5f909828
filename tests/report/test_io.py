"""weightinfo.report.io: JSON-safe conversion and atomic writes."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from weightinfo.report import read_json, to_jsonable, write_json_atomic


def test_round_trip_and_no_temp_files(tmp_path):
    obj = {"a": 1, "b": [1.5, "x", None, True], "nested": {"k": (1, 2)}}
    path = write_json_atomic(tmp_path / "sub" / "out.json", obj)
    assert path == tmp_path / "sub" / "out.json"
    assert read_json(path) == {"a": 1, "b": [1.5, "x", None, True], "nested": {"k": [1, 2]}}
    assert os.listdir(path.parent) == ["out.json"]
    assert path.read_text().endswith("\n")
    assert (path.stat().st_mode & 0o777) == 0o644


def test_nonfinite_become_null_by_default(tmp_path):
    path = write_json_atomic(
        tmp_path / "x.json", {"nan": float("nan"), "inf": [math.inf, -math.inf]}
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))
    assert read_json(path) == {"nan": None, "inf": [None, None]}


def test_nonfinite_as_strings_on_request(tmp_path):
    path = write_json_atomic(
        tmp_path / "x.json", [float("nan"), math.inf, -math.inf], nonfinite="string"
    )
    values = read_json(path)
    assert values == ["NaN", "Infinity", "-Infinity"]
    assert math.isnan(float(values[0])) and float(values[1]) == math.inf
    with pytest.raises(ValueError, match="nonfinite"):
        to_jsonable(1.0, nonfinite="zero")


def test_tensors_numpy_and_paths():
    out = to_jsonable(
        {
            "t0": torch.tensor(2.5, dtype=torch.float64),
            "t": torch.tensor([[1, 2], [3, 4]]),
            "tnan": torch.tensor([1.0, float("nan")]),
            "np": np.arange(3, dtype=np.int64),
            "np_scalar": np.float32(0.5),
            "np_int": np.int64(7),
            "np_bool": np.bool_(True),
            "path": Path("a/b.json"),
            "set": {3, 1, 2},
            1: "int key",
        }
    )
    assert out == {
        "t0": 2.5,
        "t": [[1, 2], [3, 4]],
        "tnan": [1.0, None],
        "np": [0, 1, 2],
        "np_scalar": 0.5,
        "np_int": 7,
        "np_bool": True,
        "path": "a/b.json",
        "set": [1, 2, 3],
        "1": "int key",
    }
    json.dumps(out, allow_nan=False)


def test_objects_with_to_dict_and_dataclasses():
    from dataclasses import dataclass

    @dataclass
    class Point:
        x: float
        y: float

    class Result:
        def to_dict(self):
            return {"p": Point(1.0, float("nan"))}

    assert to_jsonable(Result()) == {"p": {"x": 1.0, "y": None}}


def test_unserialisable_value_leaves_existing_file_untouched(tmp_path):
    path = write_json_atomic(tmp_path / "x.json", {"v": 1})
    with pytest.raises(TypeError, match=r"value\['bad'\]"):
        write_json_atomic(path, {"v": 2, "bad": object()})
    assert read_json(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["x.json"]


def test_failed_replace_removes_temp_file(tmp_path, monkeypatch):
    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        write_json_atomic(tmp_path / "x.json", {"v": 1})
    assert os.listdir(tmp_path) == []


def test_overwrite_replaces_content(tmp_path):
    path = tmp_path / "x.json"
    write_json_atomic(path, {"v": 1})
    write_json_atomic(path, {"v": 2})
    assert read_json(path) == {"v": 2}
    assert os.listdir(tmp_path) == ["x.json"]
