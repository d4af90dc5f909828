"""Flat views of :class:`weightinfo.Tracker` records: the scalars that loggers get, and a pandas table.

A record (``tracker.py``'s table) holds settings (``call``, ``epoch``, ``step``, ``n_probe``, ...), measured
numbers and one nested dict, ``layer_trace``. :func:`logged_scalars` keeps the measured numbers — every
quantity with its standard error, per-layer tr F as ``layer_trace/<module>`` — in the record's units
(tr F in nats / weight², IW and ln|F + δI| in nats, loss in nats / sample, accuracy a fraction, η/B in
lr / sample, B_simple in samples); :func:`records_dataframe` gives one row per record with every field.
"""

from __future__ import annotations

import math
from typing import Any

#: Record keys that are settings or bookkeeping, not measurements (never sent to a logger).
SETTINGS = frozenset(
    {
        "call",
        "epoch",
        "step",
        "lr",
        "batch_size",
        "time",
        "n_probe",
        "trace_groups",
        "trace_kind",
        "logdet_method",
        "logdet_damping",
    }
)
#: Separator between ``layer_trace`` and the module name in flat keys (``"<root>"`` for the root module).
LAYER_SEP = "/"


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """The record with ``layer_trace`` spread into ``layer_trace/<module>`` keys (same values)."""
    out = {k: v for k, v in record.items() if k != "layer_trace"}
    for layer, v in (record.get("layer_trace") or {}).items():
        out[f"layer_trace{LAYER_SEP}{layer}"] = v
    return out


def logged_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The measured numbers of a record as ``{name: float}`` (settings, strings and nulls left out)."""
    out = {}
    for k, v in flatten(record).items():
        if k in SETTINGS or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


def records_dataframe(records: list[dict[str, Any]]):
    """One row per record, the columns of :func:`flatten` (missing values NaN/None)."""
    from .._base.frames import dataframe

    return dataframe([flatten(r) for r in records])
