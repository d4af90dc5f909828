"""PyTorch Lightning: :class:`InformationCallback` logs the tracker's quantities to the trainer's loggers.

At the end of every ``every``-th training epoch the callback runs one :meth:`weightinfo.Tracker.step` on the
``LightningModule`` (or on ``getattr(pl_module, attribute)``, its inner network) and sends the record's
measured numbers to every logger of the trainer with ``log_metrics(metrics, step=epoch)`` (``epoch``
1-based, as in :func:`weightinfo.train`; on global rank zero only). Logged names (units):

====================================  =========================================================================
``weightinfo/trace``                  tr F [nats / weight²], mean over the probe set; ``…/trace_stderr``
``weightinfo/layer_trace/<module>``   tr F of one module [nats / weight²] (names as in ``named_modules()`` of
                                      the tracked network; ``<root>`` for its root)
``weightinfo/information``            IW at ``beta``, ``prior_scale`` [nats] (with ``"information"``)
``weightinfo/logdet``                 ln|F + δI| [nats] (with ``"logdet"``)
``weightinfo/loss``, ``…/accuracy``   on the probe set [nats / sample], [0–1]; ``test_*`` with ``test_data``
``weightinfo/temperature``            η/B [lr / sample] (η of the first optimizer, B of the train loader)
``weightinfo/gradient_noise``         B_simple [samples] (with ``"gradient_noise"``)
====================================  =========================================================================

The Tracker puts the network in eval mode for the measurement (restoring each module's flag) and runs with
gradients enabled even under ``inference_mode``; the training step count and learning rate of the record
are ``trainer.global_step`` and the first optimizer's first param group. ``callback.tracker.records`` keeps
every record (and ``tracker.to_dataframe()`` the table); ``path=`` also writes them as JSONL.

Needs the ``lightning`` package (``pip install lightning``), imported when ``InformationCallback`` is first
looked up (``from weightinfo.integrations.lightning import InformationCallback``), not with this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..dynamics.records import logged_scalars
from ..dynamics.tracker import DEFAULT_QUANTITIES, Tracker

__all__ = ["PREFIX", "InformationCallback"]  # noqa: F822 (module __getattr__)

PREFIX = "weightinfo/"


def _lightning():
    try:
        import lightning.pytorch as pl
    except ImportError as e:
        raise ImportError(
            "InformationCallback needs PyTorch Lightning: pip install lightning "
            "(weightinfo's test extra installs it: pip install 'weightinfo[dev]')"
        ) from e
    return pl


class _Impl:
    """Log tr F, per-layer tr F, IW at β and the other tracker quantities at Lightning epoch ends.

    Parameters
    ----------
    probe_data : the fixed probe set, ``(X, Y)`` or a DataLoader of ``(x, y)`` batches (as :class:`Tracker`).
    quantities : tracker quantities (default :data:`weightinfo.dynamics.tracker.DEFAULT_QUANTITIES`).
    every : record every ``every``-th epoch (1-based: epochs ``every``, ``2·every``, …).
    beta, prior_scale : β (per sample) and λ of ``"information"``.
    attribute : measure ``getattr(pl_module, attribute)`` (e.g. ``"model"``) instead of the module itself.
    batch_size : B of ``"temperature"``; else read from ``trainer.train_dataloader.batch_size``.
    prefix : prefix of the logged names (default ``"weightinfo/"``).
    **tracker_kwargs : any other :class:`Tracker` keyword (``test_data``, ``kind``, ``path``, ``loss``, …).
    """

    def __init__(
        self,
        probe_data,
        quantities: Sequence[str] | str = DEFAULT_QUANTITIES,
        every: int = 1,
        beta: float | None = None,
        prior_scale=None,
        *,
        attribute: str | None = None,
        batch_size: int | None = None,
        prefix: str = PREFIX,
        **tracker_kwargs,
    ):
        super().__init__()
        self.tracker = Tracker(
            probe_data,
            every=every,
            quantities=quantities,
            beta=beta,
            prior_scale=prior_scale,
            batch_size=batch_size,
            **tracker_kwargs,
        )
        self.attribute = attribute
        self.prefix = str(prefix)
        self.logged: list[
            dict[str, float]
        ] = []  # what was sent to the loggers, one dict per record

    def network(self, pl_module):
        """The network measured: ``pl_module`` or its ``attribute``."""
        if self.attribute is None:
            return pl_module
        net = getattr(pl_module, self.attribute, None)
        if net is None:
            raise AttributeError(
                f"InformationCallback(attribute={self.attribute!r}): the LightningModule "
                f"{type(pl_module).__name__} has no such attribute"
            )
        return net

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = int(trainer.current_epoch) + 1
        if epoch % self.tracker.every != 0 or not trainer.is_global_zero:
            return
        import torch

        lr = None
        if trainer.optimizers:
            lr = float(trainer.optimizers[0].param_groups[0]["lr"])
        batch_size = None
        if self.tracker.batch_size is None:
            batch_size = getattr(trainer.train_dataloader, "batch_size", None)
        with torch.inference_mode(False):
            rec = self.tracker.step(
                self.network(pl_module),
                step=int(trainer.global_step),
                epoch=epoch,
                lr=lr,
                batch_size=batch_size,
            )
        self.log_record(trainer, rec)

    def log_record(self, trainer, rec: dict[str, Any]) -> dict[str, float]:
        """Send the measured numbers of ``rec`` to every logger of ``trainer`` at ``step=rec["epoch"]``."""
        metrics = {self.prefix + k: v for k, v in logged_scalars(rec).items()}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=rec["epoch"])
        self.logged.append(metrics)
        return metrics

    def __repr__(self) -> str:
        return f"InformationCallback({self.tracker!r}, attribute={self.attribute!r})"


_CLASS = None


def _callback_class():
    """``InformationCallback``: :class:`_Impl` with ``lightning.pytorch.Callback`` as a base, made once."""
    global _CLASS
    if _CLASS is None:
        _CLASS = type("InformationCallback", (_Impl, _lightning().Callback), {})
        _CLASS.__doc__ = _Impl.__doc__
        _CLASS.__module__ = __name__
        _CLASS.__qualname__ = "InformationCallback"
    return _CLASS


def __getattr__(name):  # PEP 562: Lightning is imported when the class is first looked up
    if name == "InformationCallback":
        return _callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
