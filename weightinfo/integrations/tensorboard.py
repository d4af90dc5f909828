"""TensorBoard: tracker scalars every recorded epoch and the "where is the information" map as an image.

Everything goes through ``torch.utils.tensorboard.SummaryWriter`` (needs the ``tensorboard`` package:
``pip install tensorboard``). Tags, all under ``weightinfo/``:

========================================  ========================================================================
``weightinfo/trace``                      tr F [nats / weight²] (mean over probe samples); ``…/trace_stderr`` its
                                          batch-means standard error
``weightinfo/layer_trace/<module>``       tr F of one module [nats / weight²] (``<root>`` for the root module)
``weightinfo/information``                IW at the tracker's β, λ [nats]
``weightinfo/logdet``                     ln|F + δI| [nats] (``…/logdet_stderr``)
``weightinfo/loss``, ``…/test_loss``      mean loss [nats / sample]
``weightinfo/accuracy``, ``…/test_accuracy``  fraction correct [0–1]
``weightinfo/temperature``                η/B [lr / sample]
``weightinfo/gradient_noise``             B_simple [samples] (``…/gradient_norm_sq``, ``…/gradient_trace_cov``
                                          [nats² / weight²])
``weightinfo/where``                      the where-map PNG (:func:`weightinfo.report.plots.plot_where`), HWC RGB
``weightinfo/iw/nats``, ``…/iw/bits``     IW of an :class:`~weightinfo.InformationResult` [nats], [bits]
``weightinfo/iw/layer/<module>``          its nats per module [nats]
``weightinfo/iw/train_loss``, ``…/expected_loss``, ``…/lagrangian``  L_D(w*), E_Q[L_D], C_β [nats / sample]
========================================  ========================================================================

Tracker scalars (:func:`weightinfo.dynamics.records.logged_scalars`: every measured number of a record, no
settings) are written at ``global_step`` = the record's epoch (else its optimizer step, else its call number).
Use ``Tracker(..., tensorboard=DIR)`` (or an open ``SummaryWriter``), :class:`TensorBoardWriter` directly,
or ``weightinfo train/track/measure --tensorboard DIR``.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

from ..dynamics.records import logged_scalars

__all__ = [
    "PREFIX",
    "TensorBoardWriter",
    "log_information",
    "log_where_map",
    "summary_writer",
    "write_measurement",
]

PREFIX = "weightinfo/"


def summary_writer(log_dir: str | os.PathLike):
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``log_dir``; ``ImportError`` naming the package if the
    ``tensorboard`` package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ImportError(
            "TensorBoard output needs the tensorboard package: pip install tensorboard"
        ) from e
    return SummaryWriter(log_dir=str(log_dir))


def _is_writer(obj) -> bool:
    return callable(getattr(obj, "add_scalar", None)) and callable(getattr(obj, "add_image", None))


def record_step(record: dict[str, Any]) -> int:
    """The global step of a tracker record: its epoch, else its optimizer step, else its call number."""
    for k in ("epoch", "step", "call"):
        if record.get(k) is not None:
            return int(record[k])
    return 0


class TensorBoardWriter:
    """Write :class:`weightinfo.Tracker` records (and information results) as TensorBoard summaries.

    ``target`` is a folder (a ``SummaryWriter`` is opened there, and closed by :meth:`close`) or an open
    ``SummaryWriter``-like object (``add_scalar``/``add_image``; flushed, never closed here).
    """

    def __init__(self, target):
        if _is_writer(target):
            self.writer, self._owned = target, False
        elif isinstance(target, (str, os.PathLike)):
            self.writer, self._owned = summary_writer(target), True
        else:
            raise TypeError(
                "tensorboard must be a folder (str or Path) or a SummaryWriter, "
                f"got {type(target).__name__}"
            )

    @property
    def log_dir(self) -> Path | None:
        d = (
            getattr(self.writer, "log_dir", None)
            or getattr(self.writer, "get_logdir", lambda: None)()
        )
        return None if d is None else Path(d)

    def write_record(self, record: dict[str, Any]) -> dict[str, float]:
        """``add_scalar("weightinfo/<name>", value, global_step)`` for every measured number; returns them."""
        step = record_step(record)
        scalars = logged_scalars(record)
        for k, v in scalars.items():
            self.writer.add_scalar(PREFIX + k, v, global_step=step)
        self.writer.flush()
        return scalars

    def log_information(self, result, step: int = 0, *, where: bool = True, **kw) -> None:
        """:func:`log_information` (and, with ``where``, :func:`log_where_map`) on this writer."""
        log_information(self.writer, result, step)
        if where:
            log_where_map(self.writer, result, step, **kw)
        self.writer.flush()

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        """Flush; close the writer if this object opened it."""
        self.writer.flush()
        if self._owned:
            self.writer.close()


def log_information(writer, result, step: int = 0) -> dict[str, float]:
    """IW, bits, per-module nats, L_D(w*), E_Q[L_D] and C_β of an ``InformationResult`` as scalars
    (tags ``weightinfo/iw/...``, module docstring); non-finite values (E_Q[L_D] not estimated) are left out."""
    values = {
        "iw/nats": result.nats,
        "iw/bits": result.bits,
        "iw/train_loss": result.train_loss,
        "iw/expected_loss": result.expected_loss,
        "iw/lagrangian": result.lagrangian,
        "iw/beta": result.beta,
    }
    for row in result.per_layer.rows:
        values[f"iw/layer/{row['layer'] or '<root>'}"] = row["nats"]
    out = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}
    for k, v in out.items():
        writer.add_scalar(PREFIX + k, v, global_step=step)
    return out


def where_map_array(result, *, title: str | None = None, png: str | os.PathLike | None = None):
    """The where-map of ``result`` as an H×W×3 float32 array in [0, 1]: drawn by
    :func:`~weightinfo.report.plots.plot_where` (or read from an already drawn ``png``) and decoded with
    ``matplotlib.image.imread``."""
    import matplotlib.image as mpimg

    if png is not None:
        img = mpimg.imread(str(png), format="png")
    else:
        from ..report.plots import plot_where

        with tempfile.TemporaryDirectory() as d:
            img = mpimg.imread(str(plot_where(result, Path(d) / "where.png", title=title)))
    return img[..., :3]


def log_where_map(
    writer,
    result,
    step: int = 0,
    *,
    tag: str = PREFIX + "where",
    title: str | None = None,
    png: str | os.PathLike | None = None,
):
    """Add the where-map of ``result`` (an ``InformationResult``) to ``writer`` as an image at ``step``
    (``add_image(tag, array, step, dataformats="HWC")``); returns the array."""
    img = where_map_array(result, title=title, png=png)
    writer.add_image(tag, img, global_step=step, dataformats="HWC")
    return img


def write_measurement(log_dir, result, *, step: int = 0, png=None) -> Path | None:
    """``weightinfo measure --tensorboard``: the IW scalars and the where-map of ``result`` at ``step`` in
    ``log_dir`` (``png``: the where-map already drawn); returns the event folder."""
    tb = TensorBoardWriter(log_dir)
    try:
        tb.log_information(result, step, png=png)
    finally:
        tb.close()
    return tb.log_dir
