"""Models whose batches are dicts and whose outputs are objects (Hugging Face ``transformers``), as plain models.

Every routine of weightinfo feeds a model one tensor ``x`` and reads one tensor of outputs. A model such as
``BertForSequenceClassification`` takes keyword tensors (``input_ids``, ``attention_mask``, ...) and returns an
object with a ``.logits`` field. :func:`adapt` wraps it in a :class:`ModelAdapter`: an ``nn.Module`` whose
forward takes one *packed* tensor and returns the logits, so ``fisher``, ``information``, ``certify`` and
``effective_information`` work on it unchanged.

Packing: :meth:`ModelAdapter.pack` turns a dict of batch-first tensors into one (B, n) tensor, each input
flattened per sample and laid side by side (int64 when every input is an integer or bool tensor, float64
otherwise, which holds integers below 2⁵³ exactly); ``forward`` cuts it back into the named inputs, with their
shapes and dtypes (floating inputs take the dtype of the model's parameters). The per-sample shapes are fixed
by the first pack: pad sequences to one length. Slicing, concatenating or moving packed rows is slicing,
concatenating or moving samples, so every data path of weightinfo handles them as it handles images.

The wrapped model is the submodule ``model``: its parameters are shared, not copied, and their names in
weightinfo's results carry the prefix ``model.`` (``model.bert.embeddings.word_embeddings.weight``).

>>> import torch
>>> class Scorer(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.emb = torch.nn.Embedding(10, 3)
...     def forward(self, ids, mask):
...         return {"scores": (self.emb(ids) * mask[..., None]).sum(1)}
>>> net = adapt(Scorer(), inputs=("ids", "mask"), logits="scores")
>>> x = net.pack({"ids": torch.tensor([[1, 2, 0]]), "mask": torch.tensor([[1, 1, 0]])})
>>> x.shape, x.dtype, net(x).shape
(torch.Size([1, 6]), torch.int64, torch.Size([1, 3]))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ModelAdapter", "adapt"]


@dataclass(frozen=True)
class _Slot:
    name: str
    shape: tuple[int, ...]  # per sample
    dtype: torch.dtype

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


class ModelAdapter(nn.Module):
    """``model`` seen as ``x ↦ logits``: ``x`` packs the keyword inputs named in ``inputs`` (see the module
    doc), the output is the field ``logits`` of what ``model`` returns.

    ``logits``: an attribute or key name (a ``ModelOutput``, dataclass or dict), an index (a tuple), or a
    callable ``output ↦ tensor``; a model that returns a tensor is read as it is.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: Sequence[str] = ("input_ids", "attention_mask"),
        logits: str | int | Callable = "logits",
    ):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if isinstance(inputs, str):
            inputs = (inputs,)
        inputs = tuple(inputs)
        if (
            not inputs
            or len(set(inputs)) != len(inputs)
            or not all(isinstance(k, str) for k in inputs)
        ):
            raise ValueError(f"inputs must name distinct keyword inputs, got {inputs!r}")
        if not (isinstance(logits, (str, int)) or callable(logits)):
            raise TypeError(f"logits must be a name, an index or a callable, got {logits!r}")
        self.model = model
        self.inputs = inputs
        self.logits = logits
        self._slots: tuple[_Slot, ...] | None = None
        self._packed_dtype: torch.dtype | None = None

    def extra_repr(self) -> str:
        return f"inputs={self.inputs}, logits={self.logits!r}"

    # ------------------------------------------------------------------ packing
    def pack(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """One (B, n) tensor holding the inputs of ``batch`` (a dict with at least the keys of ``inputs``;
        other keys, such as ``labels``, are ignored)."""
        if not isinstance(batch, Mapping):
            raise TypeError(f"batch must be a dict of tensors, got {type(batch).__name__}")
        missing = [k for k in self.inputs if k not in batch]
        if missing:
            raise KeyError(f"batch lacks the input(s) {missing}; it has {sorted(batch)}")
        values = [batch[k] for k in self.inputs]
        for k, v in zip(self.inputs, values):
            if not isinstance(v, torch.Tensor) or v.ndim == 0:
                raise TypeError(f"input {k!r} must be a batch-first tensor, got {type(v).__name__}")
        B = values[0].shape[0]
        bad = {k: v.shape[0] for k, v in zip(self.inputs, values) if v.shape[0] != B}
        if bad:
            raise ValueError(
                f"inputs disagree on the batch size: {self.inputs[0]!r} has {B}, {bad}"
            )
        slots = tuple(_Slot(k, tuple(v.shape[1:]), v.dtype) for k, v in zip(self.inputs, values))
        integer = all(not (v.is_floating_point() or v.is_complex()) for v in values)
        if any(v.is_complex() for v in values):
            raise TypeError("complex inputs cannot be packed")
        packed = torch.int64 if integer else torch.float64
        if self._slots is None:
            self._slots, self._packed_dtype = slots, packed
        elif slots != self._slots or packed != self._packed_dtype:
            raise ValueError(
                "this adapter packs inputs of per-sample shapes and dtypes "
                f"{[(s.name, s.shape, s.dtype) for s in self._slots]}; got "
                f"{[(s.name, s.shape, s.dtype) for s in slots]} (pad sequences to one length)"
            )
        return torch.cat([v.reshape(B, -1).to(packed) for v in values], dim=1)

    def unpack(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The keyword inputs packed in ``x`` (inverse of :meth:`pack`)."""
        if self._slots is None:
            raise RuntimeError(
                "nothing packed yet: build inputs with adapter.pack(batch) or adapter.data(...)"
            )
        width = sum(s.size for s in self._slots)
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(
                f"expected packed inputs of shape (B, {width}) from adapter.pack, got {tuple(x.shape)}"
            )
        float_dtype = next(
            (p.dtype for p in self.model.parameters() if p.is_floating_point()), None
        )
        out, start = {}, 0
        for s in self._slots:
            part = x[:, start : start + s.size].reshape(x.shape[0], *s.shape)
            dtype = (
                float_dtype if s.dtype.is_floating_point and float_dtype is not None else s.dtype
            )
            out[s.name] = part.to(dtype)
            start += s.size
        return out

    def data(self, data, target: str = "labels"):
        """``data`` with packed inputs: a tuple ``(inputs, Y)`` with ``inputs`` a dict of tensors gives the
        tuple ``(pack(inputs), Y)``; an iterable of batches, each a dict holding the key ``target`` or an
        ``(inputs, y)`` pair, gives a re-iterable loader of ``(pack(inputs), y)`` batches."""
        if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], Mapping):
            return self.pack(data[0]), data[1]
        if isinstance(data, Mapping):
            return self.pack(data), data[target]
        return _PackedLoader(self, data, target)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.read_logits(self.model(**self.unpack(x)))

    def read_logits(self, out) -> torch.Tensor:
        """The logits in the model's output ``out`` (see the class doc)."""
        if isinstance(out, torch.Tensor):
            return out
        key = self.logits
        if callable(key):
            z = key(out)
        elif isinstance(key, int):
            z = out[key]
        elif isinstance(out, Mapping) and key in out:  # dict, ModelOutput
            z = out[key]
        elif hasattr(out, key):  # dataclass, namedtuple, ModelOutput
            z = getattr(out, key)
        else:
            raise TypeError(f"the model's output ({type(out).__name__}) has no field {key!r}")
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"logits={key!r} gives a {type(z).__name__}, not a tensor")
        return z


class _PackedLoader:
    """Batches of a loader with their inputs packed; iterable as often as the loader is."""

    def __init__(self, adapter: ModelAdapter, loader: Iterable, target: str):
        self.adapter, self.loader, self.target = adapter, loader, target

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for k, batch in enumerate(self.loader):
            if isinstance(batch, Mapping):
                if self.target not in batch:
                    raise KeyError(
                        f"batch {k} has no target {self.target!r}; it has {sorted(batch)}"
                    )
                yield self.adapter.pack(batch), batch[self.target]
            elif (
                isinstance(batch, (tuple, list))
                and len(batch) >= 2
                and isinstance(batch[0], Mapping)
            ):
                yield self.adapter.pack(batch[0]), batch[1]
            else:
                raise TypeError(f"batch {k} is neither a dict nor an (inputs dict, y) pair")


def adapt(
    model: nn.Module,
    inputs: Sequence[str] = ("input_ids", "attention_mask"),
    logits: str | int | Callable = "logits",
) -> ModelAdapter:
    """Wrap ``model`` (keyword tensor inputs, an output object) as a model ``x ↦ logits``; see
    :class:`ModelAdapter`. The defaults fit Hugging Face sequence classifiers."""
    return ModelAdapter(model, inputs=inputs, logits=logits)
