"""Per-sample squared gradients on arbitrary graphs, one backward pass per output direction.

For a direction g (B × K, one row per sample) the per-sample gradient of ⟨g_i, f_w(x_i)⟩ with respect to the
weights of a layer only needs the layer's input a_i and the back-propagated gradient δ_i of its output
(Goodfellow 2015; Dangel et al. 2020, BackPACK). We record inputs with forward hooks, get every δ with a single
``torch.autograd.grad`` call, and assemble per module:

* ``nn.Linear`` with 2-D input, called once: Σ_i (δ_i a_iᵀ)² = (δ²)ᵀ(a²) — one matrix product per batch, the
  "square trick", and the sum over output directions r can be taken before it: Σ_r δ_ir² ⊗ a_i²;
* ``nn.Linear`` on (B, T, I) inputs or called several times, ``nn.Conv2d`` (unfolded inputs): explicit per-sample
  gradients Σ_t δ_it a_itᵀ, summed over calls, squared, summed over the batch (chunked to bound memory);
* every other module that owns parameters (BatchNorm, LayerNorm, attention, embeddings, custom modules, the
  root): ``torch.func`` — a vmapped vector-Jacobian product of the module alone at its recorded inputs, so any
  module whose forward treats samples independently is covered. A module whose inputs or outputs are not
  batch-first falls back to a vmapped VJP of the whole model for its parameters (one VJP per sample where the
  forward has data-dependent control flow that vmap cannot batch, as Hugging Face attention masks do).

A first-batch guard compares Σ_i (per-sample gradient) with the batch gradient of every parameter, so a
parameter used outside its module's forward (weight tying, functional calls) is reported, never silently wrong.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, vjp
from torch.nn import functional as F
from torch.utils._pytree import tree_flatten

from .._base.vmapping import map_samples

# Upper bound on the number of elements of an explicit per-sample gradient chunk (B_chunk × layer size).
_CHUNK_ELEMENTS = 1 << 24
# Chunk of explicit per-sample gradients (B_chunk × R × layer size) squared while still in cache.
_EXPLICIT_CHUNK = 1 << 20
# Conv2d layers with at least this many output positions get per-sample gradients from a grouped
# weight-gradient convolution instead of unfolded inputs (faster at 28x28, slower at 4x4).
_GROUPED_CONV_MIN_POSITIONS = 64


def _out_hw(m: nn.Conv2d, H: int, W: int) -> tuple[int, int]:
    """Output height and width of a Conv2d with integer padding."""
    out = []
    for size, k, s, p, dl in zip((H, W), m.kernel_size, m.stride, m.padding, m.dilation):
        out.append((size + 2 * p - dl * (k - 1) - 1) // s + 1)
    return out[0], out[1]


@dataclass
class _Call:
    args: tuple
    kwargs: dict
    out_leaves: list  # output tensors (pytree leaves) that require grad
    all_leaves: list


@dataclass
class _ModuleRecord:
    name: str
    module: nn.Module
    params: dict  # local name -> full parameter name
    path: str  # "linear", "conv", "func", "model"
    calls: list = field(default_factory=list)


@contextmanager
def quiet_vmap():
    """Hide torch's notice that vmap runs some op (e.g. CPU flash attention) one sample at a time."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*batching rule.*", category=UserWarning)
        yield


def _fast_path(module: nn.Module) -> str | None:
    if type(module) is nn.Linear:
        return "linear"
    if (
        type(module) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
        and module.running_mean is not None
        and not module.training
    ):
        return "bn"
    if (
        type(module) is nn.Conv2d
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    ):
        return "conv"
    return None


class PerSampleEngine:
    """Accumulates Σ_i (∂⟨g_i, f(x_i)⟩/∂w)² over batches and directions, for every trainable parameter.

    Usage: ``with engine.record(B): z = model(x)``, then ``engine.accumulate(x, z, directions)`` where
    ``directions`` has shape (R, B, K): R backward passes, summed. ``engine.sums`` holds the running sums
    (float64, shaped like the parameters).
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.modules = dict(model.named_modules())
        self.calls: dict[str, list[_Call]] = {}
        self.records: dict[str, _ModuleRecord] | None = None  # planned on the first batch
        self.sums = {
            n: torch.zeros(p.shape, dtype=torch.float64, device=p.device)
            for n, p in self.params.items()
        }
        self._active = False
        self._checked = False

    def _plan(self) -> dict[str, _ModuleRecord]:
        """Assign every parameter to the module whose recorded calls will give its per-sample gradient.

        A parameter belongs to the module that owns it, unless that module was never called (its parameter is
        used by an ancestor's forward, as ``nn.MultiheadAttention`` does with ``out_proj``): then to the nearest
        called ancestor, and failing that to the whole model.
        """
        records: dict[str, _ModuleRecord] = {}
        for full in self.params:
            mname, _, lname = full.rpartition(".")
            owner = mname
            while owner and not self.calls.get(owner):
                owner = owner.rpartition(".")[0]
            m = self.modules[owner]
            rel = full[len(owner) + 1 :] if owner else full
            if owner not in records:
                path = (
                    "model" if not owner else (_fast_path(m) if owner == mname else None) or "func"
                )
                records[owner] = _ModuleRecord(owner, m, {}, path)
            records[owner].params[rel] = full
        for r in records.values():
            if r.path != "model":
                r.calls = self.calls[r.name]
        return records

    # ------------------------------------------------------------------ recording
    @contextmanager
    def record(self, batch_size: int):
        """Record the inputs and outputs of every (sub)module during one forward pass."""
        self.calls = {}
        handles = [
            m.register_forward_hook(self._hook(name), with_kwargs=True)
            for name, m in self.modules.items()
            if name and (self.records is None or name in self.records)
        ]
        self._active = True
        try:
            yield
        finally:
            self._active = False
            for h in handles:
                h.remove()
        if self.records is None:
            self.records = self._plan()
        for r in self.records.values():
            if r.path != "model":
                r.calls = self.calls.get(r.name, [])

    def _hook(self, name: str):
        def hook(module, args, kwargs, output):
            if not self._active:
                return
            leaves, _ = tree_flatten(output)
            out_leaves = [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]
            self.calls.setdefault(name, []).append(_Call(args, kwargs, out_leaves, leaves))

        return hook

    # ------------------------------------------------------------------ accumulation
    def accumulate(self, x: torch.Tensor, z: torch.Tensor, directions: torch.Tensor) -> None:
        """Add Σ_r Σ_i (per-sample gradient of ⟨directions[r, i], z_i⟩)² to ``self.sums``.

        ``x`` is the batch that produced ``z = model(x)`` under :meth:`record`; ``directions`` is (R, B, K).
        """
        B, R = z.shape[0], directions.shape[0]
        for r in self.records.values():
            if r.path == "func" and not self._batch_first(r, B):
                r.path = "model"  # cannot isolate the module per sample: use the whole-model path
        recs = [r for r in self.records.values() if r.path != "model" and r.calls]
        model_recs = [r for r in self.records.values() if r.path == "model"]
        targets, owners = [], []
        for r in recs:
            for ci, c in enumerate(r.calls):
                for t in c.out_leaves:
                    targets.append(t)
                    owners.append((r.name, ci))
        # Σ_i per-sample gradients of direction 0, compared once with the batch gradient (see module doc).
        guard = None if self._checked else {}
        sq_linear: dict[str, torch.Tensor] = {}  # Σ_r δ² per square-trick Linear
        # All directions in one vmapped backward pass where memory allows.
        step = max(1, min(R, _CHUNK_ELEMENTS // max(1, sum(t.numel() for t in targets))))
        for k0 in range(0, R, step):
            G = directions[k0 : k0 + step].reshape(-1, *z.shape).to(z.dtype)
            deltas = self._deltas(z, targets, G)
            per_call: dict[str, dict[int, list]] = {}
            for (name, ci), d in zip(owners, deltas):
                per_call.setdefault(name, {}).setdefault(ci, []).append(d)
            first = guard is not None and k0 == 0
            for r in recs:
                calls = per_call.get(r.name, {})
                if self._square_trick(r):
                    d = calls[0][0]  # (r, B, O)
                    sq_linear[r.name] = sq_linear.get(r.name, 0) + d.pow(2).sum(0)
                    if first:
                        a = r.calls[0].args[0].detach()
                        guard[r.params["weight"]] = (d[0].transpose(0, 1) @ a).to(torch.float64)
                        if "bias" in r.params:
                            guard[r.params["bias"]] = d[0].sum(0).to(torch.float64)
                elif r.path in ("linear", "conv"):
                    self._explicit(r, calls, guard if first else None)
                elif r.path == "bn":
                    self._batchnorm(r, calls, guard if first else None)
                else:
                    for j in range(G.shape[0]):
                        calls_j = {ci: [d[j] for d in ds] for ci, ds in calls.items()}
                        for lname, ps in self._func(r, calls_j):
                            self._add(r.params[lname], ps, guard if first and j == 0 else None)
            for r in model_recs:
                for j in range(G.shape[0]):
                    for lname, ps in self._per_sample_model(r, x, G[j]):
                        self._add(r.params[lname], ps, guard if first and j == 0 else None)
        for name, d2 in sq_linear.items():
            r = self.records[name]
            a = r.calls[0].args[0].detach()
            self.sums[r.params["weight"]] += (d2.transpose(0, 1) @ a.pow(2)).to(torch.float64)
            if "bias" in r.params:
                self.sums[r.params["bias"]] += d2.sum(0).to(torch.float64)
        if guard is not None:
            bad = self._check(z, directions[0].reshape(z.shape).to(z.dtype), guard)
            retry = {
                r.name
                for r in self.records.values()
                if r.path == "func" and set(r.params.values()) & set(bad)
            }
            if (
                bad
                and retry
                and all(any(n in self.records[m].params.values() for m in retry) for n in bad)
            ):
                # A module whose inputs merely looked batch-first (e.g. sequence-first attention with T == B):
                # redo this first batch with the whole-model path for it.
                for m in retry:
                    self.records[m].path = "model"
                for v in self.sums.values():
                    v.zero_()
                return self.accumulate(x, z, directions)
            if bad:
                self._fail(bad[0])
            self._checked = True

    @staticmethod
    def _square_trick(r: _ModuleRecord) -> bool:
        return (
            r.path == "linear"
            and len(r.calls) == 1
            and r.calls[0].args[0].ndim == 2
            and "weight" in r.params
        )

    @staticmethod
    def _deltas(z: torch.Tensor, targets: list, G: torch.Tensor) -> list[torch.Tensor]:
        """∂⟨G[j], z⟩/∂t for every target t and direction j, each shaped (len(G), *t.shape)."""
        if not targets:
            return []
        out = None
        if G.shape[0] > 1:
            try:
                with quiet_vmap():
                    out = torch.autograd.grad(
                        z, targets, G, retain_graph=True, allow_unused=True, is_grads_batched=True
                    )
            except RuntimeError:  # an op without a batching rule: one backward pass per direction
                out = None
        if out is None:
            per = [
                torch.autograd.grad(z, targets, g, retain_graph=True, allow_unused=True) for g in G
            ]
            out = [
                None
                if per[0][i] is None
                else per[0][i].unsqueeze(0)  # one direction (MC): no copy
                if len(per) == 1
                else torch.stack([p[i] for p in per])
                for i in range(len(targets))
            ]
        return [
            torch.zeros((G.shape[0], *t.shape), dtype=t.dtype, device=t.device) if d is None else d
            for t, d in zip(targets, out)
        ]

    def _explicit(self, r: _ModuleRecord, calls: dict, guard: dict | None) -> None:
        """Explicit per-sample gradients of a Linear/Conv2d for all directions, squared and summed.

        Per call: input features u_i (L × K) and output gradients δ_ri (O × L) give the per-sample weight
        gradient δ_ri u_i; calls are summed before squaring. Convolutions over many output positions fold the
        samples into the groups of one weight-gradient convolution instead of unfolding their inputs.
        """
        m = r.module
        first_call = r.calls[0].args[0]
        B = first_call.shape[0]
        R = calls[0][0].shape[0]
        if r.path == "conv":
            g = m.groups
            O, Kg = m.out_channels, m.weight[0].numel()
        else:
            g, O, Kg = 1, m.out_features, m.in_features
        # Small chunks keep the per-sample gradients cache-resident for the squaring that follows; sums
        # within one batch stay in the compute dtype (≤ batch-size terms) and go to float64 once.
        chunk = max(1, _EXPLICIT_CHUNK // max(1, R * O * Kg))
        dt, dev = first_call.dtype, first_call.device
        wname, bname = r.params.get("weight"), r.params.get("bias")
        sw = torch.zeros(g, O // g, Kg, dtype=dt, device=dev)
        sb = torch.zeros(g, O // g, dtype=dt, device=dev)
        gw0 = torch.zeros_like(sw) if guard is not None else None
        gb0 = torch.zeros_like(sb) if guard is not None else None
        for b0 in range(0, B, chunk):
            gw = gb = None
            for ci, c in enumerate(r.calls):
                a = c.args[0].detach()[b0 : b0 + chunk]
                d = calls[ci][0][:, b0 : b0 + chunk]  # (R, b, ...)
                b = d.shape[1]
                if r.path == "linear":
                    d = d.reshape(R, b, -1, O).transpose(2, 3)
                d = d.reshape(R, b, g, O // g, -1)
                if wname:
                    w_part = self._weight_grads(m, r.path, a, d)  # (b, g, R·O/g, Kg)
                    gw = w_part if gw is None else gw.add_(w_part)
                if bname:
                    b_part = d.sum(-1).permute(1, 2, 0, 3)  # (b, g, R, O/g)
                    gb = b_part if gb is None else gb.add_(b_part)
            if gw is not None:
                gw = gw.reshape(b, g, R, O // g, Kg)
                if guard is not None:
                    gw0 += gw[:, :, 0].sum(0)
                sw += gw.square_().sum((0, 2))
            if gb is not None:
                if guard is not None:
                    gb0 += gb[:, :, 0].sum(0)
                sb += gb.square_().sum((0, 2))
        for name, total, g0, shape in ((wname, sw, gw0, m.weight.shape), (bname, sb, gb0, (O,))):
            if name:
                self.sums[name] += total.reshape(shape).to(torch.float64)
                if guard is not None:
                    guard[name] = g0.reshape(shape).to(torch.float64)

    def _batchnorm(self, r: _ModuleRecord, calls: dict, guard: dict | None) -> None:
        """BatchNorm in eval mode, closed form: y = γ·x̂ + β with x̂ = (x − running mean)/√(running var + ε),
        so per sample ∂⟨δ, y⟩/∂γ_c = Σ_positions δ·x̂ and ∂⟨δ, y⟩/∂β_c = Σ_positions δ."""
        m = r.module
        gg = gb = None
        for ci, c in enumerate(r.calls):
            x = c.args[0].detach()
            d = calls[ci][0]  # (R, B, C, ...)
            shape = (1, -1) + (1,) * (x.ndim - 2)
            xhat = (x - m.running_mean.reshape(shape)) * torch.rsqrt(
                m.running_var.reshape(shape) + m.eps
            )
            dims = tuple(range(3, d.ndim))
            g_part = (d * xhat).sum(dims) if dims else d * xhat  # (R, B, C)
            b_part = d.sum(dims) if dims else d
            gg = g_part if gg is None else gg + g_part
            gb = b_part if gb is None else gb + b_part
        for lname, ps in (("weight", gg), ("bias", gb)):
            if lname in r.params:
                name = r.params[lname]
                if guard is not None:
                    guard[name] = ps[0].sum(0).to(torch.float64)
                self.sums[name] += ps.square().sum((0, 1)).to(torch.float64)

    @staticmethod
    def _weight_grads(m: nn.Module, path: str, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Per-sample weight gradients (b, g, R·O/g, K/g) from inputs ``a`` and output gradients ``d``.

        ``d`` is (R, b, g, O/g, L). Linear: rows of the input. Conv2d: unfolded patches where the output has
        few positions; otherwise one weight-gradient convolution with the b samples as extra groups, which
        avoids materialising the unfolded input (L·C·kh·kw numbers per sample).
        """
        R, b, g, Og, L = d.shape
        if path == "conv" and L >= _GROUPED_CONV_MIN_POSITIONS:
            C, H, W = a.shape[1:]
            Ho, Wo = _out_hw(m, H, W)
            # group (sample, conv group) holds the R·O/g output channels of that sample's directions
            grad = d.permute(1, 2, 0, 3, 4).reshape(1, b * g * R * Og, Ho, Wo)
            weight = (
                m.weight.detach().expand(b * R, *m.weight.shape).reshape(-1, *m.weight.shape[1:])
            )
            gw = torch.ops.aten.convolution_backward(
                grad,
                a.reshape(1, b * C, H, W),
                weight,  # only its shape is used: the mask asks for the weight gradient alone
                None,
                list(m.stride),
                list(m.padding),
                list(m.dilation),
                False,
                [0, 0],
                b * g,
                [False, True, False],
            )[1]
            return gw.reshape(b, g, R * Og, -1)
        if path == "conv":
            u = F.unfold(a, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)
            u = u.reshape(b, g, -1, L).transpose(2, 3)  # (b, g, L, K/g)
        else:
            u = a.reshape(b, 1, -1, a.shape[-1])
        return d.permute(1, 2, 0, 3, 4).reshape(b, g, R * Og, L) @ u

    def _add(self, full: str, ps: torch.Tensor, guard: dict | None) -> None:
        ps = ps.detach()
        self.sums[full] += ps.pow(2).sum(0).to(torch.float64)
        if guard is not None:
            guard[full] = ps.sum(0).to(torch.float64)

    def _check(self, z: torch.Tensor, g0: torch.Tensor, guard: dict) -> list[str]:
        """Names of parameters whose Σ_i per-sample gradients differ from the batch gradient."""
        names = list(self.params)
        batch = torch.autograd.grad(
            z, [self.params[n] for n in names], g0, retain_graph=True, allow_unused=True
        )
        tol = 1e-4 if z.dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-9
        bad = []
        for n, bg in zip(names, batch):
            bg = torch.zeros_like(self.sums[n]) if bg is None else bg.detach().to(torch.float64)
            mine = guard.get(n, torch.zeros_like(bg))
            if float((mine - bg).abs().max()) > tol * (float(bg.abs().max()) + 1e-12):
                bad.append(n)
        return bad

    def _fail(self, name: str) -> None:
        owner = next(r for r in self.records.values() if name in r.params.values())
        raise ValueError(
            f"cannot compute per-sample gradients of parameter {name!r} (in {type(owner.module).__name__}): "
            "the parameter is used outside its module's forward (weight tying or a functional call), or the "
            "model mixes samples within a batch. Its curvature would be wrong, so it is not computed."
        )

    # ------------------------------------------------------------------ per-module per-sample gradients
    def _batch_first(self, r: _ModuleRecord, B: int) -> bool:
        for c in r.calls:
            if not c.out_leaves or any(t.ndim == 0 or t.shape[0] != B for t in c.out_leaves):
                return False
            tensors = [a for a in c.args if isinstance(a, torch.Tensor)]
            if not tensors or any(a.ndim == 0 or a.shape[0] != B for a in tensors):
                return False
            if any(
                isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape[0] == B
                for v in c.kwargs.values()
            ):
                return False
        return True

    def _func(self, r, calls):
        m = r.module
        local = {ln: self.params[full].detach() for ln, full in r.params.items()}
        total = {ln: 0 for ln in local}
        for ci, c in enumerate(r.calls):
            deltas = calls[ci]
            arg_dims = tuple(0 if isinstance(a, torch.Tensor) else None for a in c.args)
            args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in c.args)
            grad_pos = [
                i
                for i, t in enumerate(c.all_leaves)
                if isinstance(t, torch.Tensor) and t.requires_grad
            ]

            def one(params, ds, *a, _c=c, _pos=grad_pos):
                a1 = tuple(t.unsqueeze(0) if isinstance(t, torch.Tensor) else t for t in a)

                def f(p):
                    out = functional_call(m, p, a1, _c.kwargs)
                    leaves, _ = tree_flatten(out)
                    return tuple(leaves[i] for i in _pos)

                _, pull = vjp(f, params)
                return pull(tuple(d.unsqueeze(0) for d in ds))[0]

            with self._paused():
                ps = map_samples(one, in_dims=(None, 0, *arg_dims))(local, tuple(deltas), *args)
            for ln in local:
                total[ln] = total[ln] + ps[ln]
        yield from total.items()

    def _per_sample_model(self, r: _ModuleRecord, x: torch.Tensor, g: torch.Tensor):
        """Whole-model vmapped VJP for parameters whose module cannot be isolated per sample."""
        names = {full: ln for ln, full in r.params.items()}
        params = {full: self.params[full].detach() for full in names}

        def one(p, xi, gi):
            def f(pp):
                return functional_call(self.model, pp, (xi.unsqueeze(0),)).squeeze(0)

            _, pull = vjp(f, p)
            return pull(gi)[0]

        with self._paused():
            ps = map_samples(one, in_dims=(None, 0, 0))(params, x, g)
        for full, ln in names.items():
            yield ln, ps[full]

    @contextmanager
    def _paused(self):
        """Silence our hooks and torch's notice about ops that vmap runs one sample at a time."""
        prev, self._active = self._active, False
        try:
            with quiet_vmap():
                yield
        finally:
            self._active = prev
