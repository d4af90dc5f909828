"""weightinfo.report.tables: rich and plain per-layer tables."""

import io

import pytest
import torch
from rich.console import Console
from rich.table import Table

import weightinfo
from weightinfo.report import format_layer_rows, layer_table, print_layer_table

ROWS = [
    {
        "layer": "fc1",
        "type": "Linear",
        "n_params": 1200,
        "trace": 3.0,
        "share": 0.75,
        "mean": 2.5e-3,
    },
    {"layer": "fc2", "type": "Linear", "n_params": 30, "trace": 1.0, "share": 0.25, "mean": 1 / 30},
]


def test_plain_text_has_rows_and_total():
    text = format_layer_rows(ROWS, title="fisher")
    lines = text.splitlines()
    assert lines[0] == "fisher"
    assert lines[1].split() == ["layer", "type", "#params", "trace", "share", "%", "mean"]
    assert lines[2].split() == ["fc1", "Linear", "1,200", "3", "75.0", "2.500e-03"]
    assert lines[-1].split() == ["total", "1,230", "4", "100.0", "3.252e-03"]
    assert "total" not in format_layer_rows(ROWS, show_total=False)


def test_missing_values_and_root_layer():
    rows = [
        {
            "layer": "",
            "type": "Linear",
            "n_params": 3,
            "trace": 0.0,
            "share": float("nan"),
            "mean": 0.0,
        }
    ]
    text = format_layer_rows(rows, show_total=False)
    assert text.splitlines()[-1].split() == ["<root>", "Linear", "3", "0", "-", "0.000e+00"]


def test_rich_table_columns_rows_and_footer():
    table = layer_table(ROWS, title="t")
    assert isinstance(table, Table)
    assert [c.header for c in table.columns] == [
        "layer",
        "type",
        "#params",
        "trace",
        "share %",
        "mean",
    ]
    assert table.row_count == 2
    assert table.show_footer and table.columns[3].footer == "4"
    buf = io.StringIO()
    Console(file=buf, width=100).print(table)
    assert "fc1" in buf.getvalue() and "1,230" in buf.getvalue()


def test_print_plain_and_rich(capsys):
    print_layer_table(ROWS, plain=True)
    assert "fc2" in capsys.readouterr().out
    buf = io.StringIO()
    print_layer_table(ROWS, console=Console(file=buf, width=100))
    assert "share %" in buf.getvalue()


def test_layer_table_of_a_curvature():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    F = weightinfo.fisher(model, (x, y))
    text = format_layer_rows(F.per_layer())
    assert text.splitlines()[0].startswith("fisher (exact, diag)")
    total = text.splitlines()[-1].split()
    assert total[0] == "total" and float(total[2]) == pytest.approx(F.trace(), rel=1e-3)


def test_rejects_non_rows():
    with pytest.raises(TypeError):
        format_layer_rows({"layer": "x"})
