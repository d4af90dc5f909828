"""Matrix-free curvature-vector products over a whole data set, for any ``nn.Module`` graph.

For a model z = f_w(x) with K outputs per sample, a per-sample loss ℓ(z, y)
(``weightinfo._base.likelihoods``) and N samples,

    GGN / exact Fisher   G v = (1/N) Σ_i J_iᵀ Λ_i J_i v,   J_i = ∂z_i/∂w,  Λ_i = ∇²_z ℓ(z_i, y_i),
    Hessian              H v = ∇_w ⟨∇_w L(w), v⟩,           L(w) = (1/N) Σ_i ℓ(f_w(x_i), y_i).

G is the Gauss–Newton matrix (Schraudolph 2002; Martens 2010); for the three exponential-family
likelihoods of ``_base.likelihoods`` (softmax cross-entropy, Bernoulli logits, unit-variance Gaussian
ℓ = ½‖y − z‖²) it equals the exact model Fisher, F = G (Martens 2020, "New insights and perspectives
on the natural gradient method", §9.2). Hv is Pearlmutter's (1994) product, computed by double
backpropagation; Jv and Jᵀu use forward- and reverse-mode ``torch.func`` (``jvp``/``vjp`` through
``functional_call``), so every module graph that torch can differentiate works (residual blocks,
BatchNorm in eval mode, weight sharing).

Conventions
-----------
* **Mean** over samples (1/N), never the sum; N counts every sample the data yield in that pass.
* Vectors live in the space of the *trainable* parameters, ordered like
  ``model.named_parameters()``: either a dict ``name → tensor`` (shaped like the parameter) or one
  flat vector of length P (see ``flatten`` and ``unflatten``). Products return the same form they
  were given, in **float64**.
* Each product runs in the model's dtype and device, batch by batch, and accumulates in float64.
  It reads the current weights and re-reads the whole data set: cost ≈ 2–3 gradient passes over
  the data per vector (GGN: forward + JVP + VJP; Hessian: forward + backward + double backward).
  ``matmat`` pushes several vectors through one pass over the data (vectorised with
  ``torch.func.vmap``).
* Distributed (``weightinfo._base.distributed``): with an initialised process group each rank passes its
  own shard; every product all-reduces the per-rank float64 sums and N, so every rank gets the product of
  the union's matrix (the same on all ranks, equal to the single-process product to float64 rounding) and
  the estimators built on products (Hutchinson, SLQ, Lanczos: probes drawn from the same seed on every
  rank) follow. Every product is collective: all ranks must ask for it, in the same order.
* The model is checked with ``check_model`` before every product: finite weights, BatchNorm and
  Dropout in eval mode (a training-mode forward would mix the batch into every per-sample
  quantity).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call, jvp, vjp, vmap

from .._base import distributed as dist
from .._base.batches import DEFAULT_BATCH_SIZE, iter_batches
from .._base.checks import check_choice, check_int, check_model, named_trainable
from .._base.likelihoods import BCEWithLogits, CrossEntropy, GaussianMSE, Loss, get_loss
from .operators import MatrixOperator, as_operator, to_scipy
from .vocabulary import CURVATURES, renamed_kwargs, warn_renamed

__all__ = [
    "CURVATURES",
    "CurvatureOperator",
    "MatrixOperator",
    "as_operator",
    "flatten",
    "ggn_vector_product",
    "hessian_vector_product",
    "param_shapes",
    "unflatten",
]


# --------------------------------------------------------------------------------------------------
# flat <-> dict
# --------------------------------------------------------------------------------------------------


def param_shapes(model: nn.Module) -> dict[str, torch.Size]:
    """Shapes of the trainable parameters, keyed and ordered like ``model.named_parameters()``.

    >>> param_shapes(nn.Linear(3, 2))
    {'weight': torch.Size([2, 3]), 'bias': torch.Size([2])}
    """
    return {k: p.shape for k, p in named_trainable(model).items()}


def flatten(
    tensors: Mapping[str, torch.Tensor], names: Sequence[str] | None = None
) -> torch.Tensor:
    """Concatenate ``tensors`` (flattened row-major) in the order ``names`` (default: dict order).

    >>> flatten({"a": torch.tensor([[1.0, 2.0]]), "b": torch.tensor([3.0])})
    tensor([1., 2., 3.])
    """
    names = list(tensors) if names is None else list(names)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise ValueError(f"flatten: missing tensor(s) {missing}")
    return torch.cat([tensors[n].reshape(-1) for n in names])


def unflatten(
    vec: torch.Tensor, shapes: Mapping[str, torch.Size | torch.Tensor | Sequence[int]]
) -> dict[str, torch.Tensor]:
    """Split a flat vector into views shaped like ``shapes`` (name → shape, or name → tensor).

    >>> unflatten(torch.arange(5.0), {"w": (2, 2), "b": (1,)})
    {'w': tensor([[0., 1.],
            [2., 3.]]), 'b': tensor([4.])}
    """
    sizes = {
        k: torch.Size(s.shape if isinstance(s, torch.Tensor) else s) for k, s in shapes.items()
    }
    total = sum(math.prod(s) for s in sizes.values())
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(
            f"unflatten: expected a flat vector of length {total}, got shape {tuple(vec.shape)}"
        )
    out, i = {}, 0
    for k, s in sizes.items():
        n = math.prod(s)
        out[k] = vec[i : i + n].view(s)
        i += n
    return out


# --------------------------------------------------------------------------------------------------
# the model as a function of one flat parameter vector
# --------------------------------------------------------------------------------------------------


class _FlatModel:
    """``model`` seen as z = f(θ, x) of one flat vector θ of its trainable parameters (internal)."""

    def __init__(self, model: nn.Module):
        check_model(model)
        params = named_trainable(model)
        dtypes = {p.dtype for p in params.values()}
        if len(dtypes) != 1:
            raise ValueError(
                f"trainable parameters must share one dtype, found {sorted(map(str, dtypes))}"
            )
        self.model = model
        self.names = list(params)
        self.shapes = {k: p.shape for k, p in params.items()}
        self.dtype = next(iter(dtypes))
        if not self.dtype.is_floating_point:
            raise ValueError(f"trainable parameters must be floating point, got {self.dtype}")
        self.device = next(iter(params.values())).device
        self.n_params = sum(p.numel() for p in params.values())

    def theta(self) -> torch.Tensor:
        """Current weights as one detached flat vector (model dtype)."""
        check_model(self.model)
        params = named_trainable(self.model)
        if list(params) != self.names or any(params[k].shape != s for k, s in self.shapes.items()):
            raise ValueError(
                "the model's trainable parameters changed since the operator was built"
            )
        return torch.cat([p.detach().reshape(-1) for p in params.values()])

    def forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, unflatten(theta, self.shapes), (x,))

    def batches(self, data, batch_size: int):
        return iter_batches(data, device=self.device, batch_size=batch_size)


def _apply_output_hessian(loss: Loss, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Λ(z) u per sample for z (B, K), u (..., B, K); closed forms avoid the (B, K, K) matrix."""
    z = z.detach()
    if isinstance(loss, CrossEntropy):
        p = torch.softmax(z, dim=-1)
        return p * u - p * (p * u).sum(-1, keepdim=True)  # (diag p − p pᵀ) u
    if isinstance(loss, BCEWithLogits):
        p = torch.sigmoid(z)
        return p * (1 - p) * u
    if isinstance(loss, GaussianMSE):
        return u
    lam = loss.output_hessian(z)  # generic fallback: (B, K, K)
    return torch.einsum("bkl,...bl->...bk", lam, u)


def _jvp(f, theta, t):
    # torch's first forward-mode call scripts its JVP decompositions, which warns
    # (DeprecationWarning from torch.jit.script) on torch ≥ 2.10: not ours to report.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script", category=DeprecationWarning)
        return jvp(f, (theta,), (t,))[1]


def _ggn_batch(fm: _FlatModel, loss: Loss, theta, x, y, V: torch.Tensor) -> torch.Tensor:
    """Σ_{i in batch} J_iᵀ Λ_i J_i V for V of shape (m, P) (model dtype); returns (m, P)."""

    def f(t):
        return fm.forward(t, x)

    z, vjp_fn = vjp(f, theta)
    loss.check_targets(z, y)
    B = z.shape[0]
    zf = z.reshape(B, -1)

    def one(v):
        u = _apply_output_hessian(loss, zf, _jvp(f, theta, v).reshape(B, -1))
        return vjp_fn(u.reshape(z.shape))[0]

    if V.shape[0] > 1:
        try:
            jv = vmap(lambda t: _jvp(f, theta, t))(V)  # (m, *z.shape)
            u = _apply_output_hessian(loss, zf, jv.reshape(V.shape[0], B, -1))
            return vmap(vjp_fn)(u.reshape(V.shape[0], *z.shape))[0]
        except RuntimeError:  # pragma: no cover - a module without vmap support: column by column
            pass
    return torch.stack([one(v) for v in V])


def _hessian_batch(fm: _FlatModel, loss: Loss, theta, x, y, V: torch.Tensor) -> torch.Tensor:
    """Σ_{i in batch} ∇²_w ℓ_i V for V of shape (m, P) by double backpropagation; returns (m, P)."""
    t = theta.detach().requires_grad_(True)
    with torch.enable_grad():
        z = fm.forward(t, x)
        loss.check_targets(z, y)
        total = loss.per_sample(z, y).sum()
        (g,) = torch.autograd.grad(total, t, create_graph=True)
        if not g.requires_grad:  # gradient constant in w: H = 0 on this batch
            return torch.zeros_like(V)

        def one(v):
            (hv,) = torch.autograd.grad(g, t, grad_outputs=v, retain_graph=True, allow_unused=True)
            return torch.zeros_like(t) if hv is None else hv

        if V.shape[0] > 1:
            try:
                (hv,) = torch.autograd.grad(
                    g,
                    t,
                    grad_outputs=V,
                    retain_graph=True,
                    is_grads_batched=True,
                    allow_unused=True,
                )
                return torch.zeros_like(V) if hv is None else hv
            except RuntimeError:  # pragma: no cover - an op without a batching rule
                pass
        return torch.stack([one(v) for v in V])


# --------------------------------------------------------------------------------------------------
# operators
# --------------------------------------------------------------------------------------------------


class CurvatureOperator:
    """The GGN (= exact Fisher) or Hessian of the mean loss as a symmetric P × P linear operator.

    Every product re-reads ``data`` with the model's current weights (≈ 2–3 gradient passes per
    vector; see the module docstring). Vectors are flat, ordered like ``model.named_parameters()``
    (trainable only); results are float64 on the input's device.

    Parameters
    ----------
    model : the network; checked with ``check_model`` (finite weights, eval mode).
    data : DataLoader of ``(x, y)`` batches or a tuple ``(X, Y)`` (split into ``batch_size`` rows);
        it must be re-iterable (a one-shot generator is empty at the second product, an error).
    curvature : which matrix, ``"ggn"`` or ``"fisher"`` (the same matrix here) or ``"hessian"``
        (``kind=`` is its deprecated spelling).
    loss : ``"cross_entropy"``, ``"bce_with_logits"`` or ``"mse"`` (ℓ = ½‖y − z‖²).

    >>> X, Y = torch.eye(2, dtype=torch.float64), torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    >>> lin = nn.Linear(2, 1, bias=False).double()
    >>> op = CurvatureOperator(lin, (X, Y), "hessian", loss="mse")  # H = XᵀX / N = I / 2
    >>> op.shape, op.matvec(torch.tensor([2.0, 4.0]))
    ((2, 2), tensor([1., 2.], dtype=torch.float64))
    """

    @renamed_kwargs(kind="curvature")
    def __init__(
        self,
        model: nn.Module,
        data,
        curvature: str = "ggn",
        *,
        loss: str = "cross_entropy",
        batch_size: int = DEFAULT_BATCH_SIZE,
    ):
        self.curvature = check_choice("curvature", curvature, CURVATURES)
        self._loss = get_loss(loss)
        self.loss = self._loss.name
        self._fm = _FlatModel(model)
        self.model = model
        self.data = data
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.param_names = list(self._fm.names)
        self.param_shapes = dict(self._fm.shapes)
        self.n_samples: int | None = None  # set by each product
        self.n_products = 0

    @property
    def kind(self) -> str:
        """Deprecated spelling of ``curvature`` (which matrix); ``kind`` means the label expectation."""
        warn_renamed("kind", "curvature", "CurvatureOperator attribute")
        return self.curvature

    @property
    def shape(self) -> tuple[int, int]:
        return (self._fm.n_params, self._fm.n_params)

    @property
    def dtype(self) -> torch.dtype:
        """dtype of every result (accumulation is always float64)."""
        return torch.float64

    def __repr__(self) -> str:
        return f"CurvatureOperator(curvature={self.curvature!r}, loss={self.loss!r}, P={self.shape[0]})"

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        """M V for V of shape (P, m), one pass over the data for all m columns; float64 (P, m)."""
        P = self.shape[0]
        if V.ndim != 2 or V.shape[0] != P:
            raise ValueError(
                f"matmat expects a (P, m) = ({P}, m) matrix, got shape {tuple(V.shape)}"
            )
        out_device = V.device
        fm = self._fm
        theta = fm.theta()
        Vt = V.detach().t().to(device=fm.device, dtype=fm.dtype).contiguous()
        batch_fn = _hessian_batch if self.curvature == "hessian" else _ggn_batch
        acc = torch.zeros(Vt.shape, dtype=torch.float64, device=fm.device)
        n = 0
        for x, y in fm.batches(self.data, self.batch_size):
            acc += batch_fn(fm, self._loss, theta, x, y, Vt).to(torch.float64)
            n += x.shape[0]
        if dist.active():  # each rank summed its shard: the union's sum, the global N
            red = dist.reduce_sums({"acc": acc, "n": n})
            acc, n = red["acc"], red["n"]
        self.n_samples = n
        self.n_products += V.shape[1]
        return (acc / n).t().to(out_device)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """M v for a flat vector of length P; returns float64 (P,)."""
        P = self.shape[0]
        if v.ndim != 1 or v.shape[0] != P:
            raise ValueError(
                f"matvec expects a flat vector of length P={P}, got shape {tuple(v.shape)}"
            )
        return self.matmat(v.unsqueeze(1)).squeeze(1)

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        return self.matvec(v) if v.ndim == 1 else self.matmat(v)

    def flatten(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Dict name → tensor (every trainable parameter, parameter-shaped) to a flat vector."""
        return _dict_to_flat(tensors, self.param_shapes)

    def unflatten(self, vec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Flat vector to dict name → tensor shaped like the parameters."""
        return unflatten(vec, self.param_shapes)

    def to_dense(self, chunk: int = 64) -> torch.Tensor:
        """The full P × P matrix from P products (``chunk`` columns per data pass); small P only."""
        P = self.shape[0]
        M = torch.empty(P, P, dtype=torch.float64)
        for i in range(0, P, chunk):
            c = min(chunk, P - i)
            E = torch.zeros(P, c, dtype=torch.float64)
            E[torch.arange(i, i + c), torch.arange(c)] = 1
            M[:, i : i + c] = self.matmat(E)
        return (M + M.t()) / 2

    def to_scipy(self):
        """A float64 symmetric ``scipy.sparse.linalg.LinearOperator`` calling ``matvec``."""
        return to_scipy(self)


# --------------------------------------------------------------------------------------------------
# one-shot products
# --------------------------------------------------------------------------------------------------


def _dict_to_flat(v: Mapping[str, torch.Tensor], shapes: Mapping[str, torch.Size]) -> torch.Tensor:
    extra = sorted(set(v) - set(shapes))
    missing = [k for k in shapes if k not in v]
    if extra or missing:
        raise ValueError(
            "vector dict must have exactly the trainable parameter names; "
            f"missing {missing}, unexpected {extra}"
        )
    for k, s in shapes.items():
        if tuple(v[k].shape) != tuple(s):
            raise ValueError(
                f"vector entry {k!r} has shape {tuple(v[k].shape)}, parameter has {tuple(s)}"
            )
    return torch.cat([v[k].detach().reshape(-1).to(torch.float64) for k in shapes])


def _product(curvature: str, model, data, v, loss: str, batch_size: int):
    op = CurvatureOperator(model, data, curvature, loss=loss, batch_size=batch_size)
    if isinstance(v, Mapping):
        flat = _dict_to_flat(v, op.param_shapes)
        return {k: t.clone() for k, t in op.unflatten(op.matvec(flat)).items()}
    if isinstance(v, torch.Tensor):
        return op.matvec(v)
    raise TypeError(f"v must be a dict name -> tensor or a flat tensor, got {type(v).__name__}")


def ggn_vector_product(
    model: nn.Module,
    data,
    v: Mapping[str, torch.Tensor] | torch.Tensor,
    loss: str = "cross_entropy",
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, torch.Tensor] | torch.Tensor:
    """G v = (1/N) Σ_i J_iᵀ Λ_i J_i v, the Gauss–Newton (= exact Fisher) product, in float64.

    ``v`` is a dict name → tensor over the trainable parameters (the result is a dict too) or a flat
    vector. For a linear model z = Wx with ``mse`` (Λ = I), G = (1/N) Σ_i x_i x_iᵀ per output row:

    >>> lin = nn.Linear(2, 1, bias=False).double()
    >>> X = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    >>> Y = torch.zeros(2, 1, dtype=torch.float64)
    >>> ggn_vector_product(lin, (X, Y), {"weight": torch.tensor([[1.0, 0.0]])}, loss="mse")
    {'weight': tensor([[1., 1.]], dtype=torch.float64)}
    """
    return _product("ggn", model, data, v, loss, batch_size)


def hessian_vector_product(
    model: nn.Module,
    data,
    v: Mapping[str, torch.Tensor] | torch.Tensor,
    loss: str = "cross_entropy",
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, torch.Tensor] | torch.Tensor:
    """H v = ∇_w ⟨∇_w L, v⟩ with L the mean loss (Pearlmutter 1994, double backprop), in float64.

    ``v`` is a dict name → tensor over the trainable parameters (the result is a dict too) or a flat
    vector.

    >>> lin = nn.Linear(2, 1, bias=False).double()
    >>> X = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    >>> Y = torch.zeros(2, 1, dtype=torch.float64)
    >>> hessian_vector_product(lin, (X, Y), torch.tensor([0.0, 1.0]), loss="mse")  # XᵀX/2 · e₂
    tensor([1., 2.], dtype=torch.float64)
    """
    return _product("hessian", model, data, v, loss, batch_size)


def __getattr__(name: str):
    # ``products.KINDS`` was this module's name for the curvature set; ``KINDS`` now means the label
    # expectation everywhere (``vocabulary.KINDS``).
    if name == "KINDS":
        warn_renamed("KINDS", "CURVATURES", "weightinfo.curvature.products")
        return CURVATURES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
