"""Device rules shared by every entry point (issue 12 §2).

* Computation follows the **model's device**: data batches are moved there as they are read
  (``iter_batches(device=...)``), accumulators are float64 tensors created on it, and nothing is copied back to
  the host inside a per-batch loop except where a decision needs a number (an early-stopping monitor); results
  are read out once, at the end of a pass.
* Random draws use the device of their ``torch.Generator``: a generator made with
  ``torch.Generator(device=model_device)`` draws there; a CPU generator (kept on purpose where a seed must give
  the same numbers on every machine, e.g. certificates) draws on the CPU and the result is moved once
  (:func:`randn`).
"""

from __future__ import annotations

import torch


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    p = next(model.parameters(), None)
    return torch.device("cpu") if p is None else p.device


def randn(shape, *, generator: torch.Generator | None, dtype, device) -> torch.Tensor:
    """Standard normal draws of ``shape`` from ``generator`` on ``device``.

    A generator on another device (a CPU generator for a CUDA tensor) draws on its own device and the draws are
    moved: the same numbers as on the CPU, where ``torch.randn(..., generator=cpu_gen, device='cuda')`` raises.
    """
    device = torch.device(device)
    if generator is None or generator.device.type == device.type:
        return torch.randn(shape, generator=generator, dtype=dtype, device=device)
    return torch.randn(shape, generator=generator, dtype=dtype, device=generator.device).to(device)
