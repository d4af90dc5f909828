"""One meaning per keyword (docs/glossary.md): value sets, deprecated spellings, and a package-wide check."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import pytest
import torch
from torch import nn

import weightinfo
from weightinfo.curvature import (
    CURVATURES,
    KINDS,
    STRUCTURES,
    Curvature,
    CurvatureOperator,
    DiagBlock,
    fisher,
    ggn,
    hessian,
)
from weightinfo.curvature import products as products_module
from weightinfo.curvature.vocabulary import renamed_kwargs

D64 = torch.float64


def _problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double().eval()
    X = torch.randn(8, 3, dtype=D64)
    Y = torch.arange(8) % 3
    return model, (X, Y)


def _curv(curvature="fisher", kind="exact"):
    return Curvature(
        curvature, kind, "diag", "mse", 1, [DiagBlock({"w": torch.ones(2, dtype=D64)})]
    )


# --------------------------------------------------------------------------------------------------
# the value sets
# --------------------------------------------------------------------------------------------------


def test_value_sets():
    assert CURVATURES == ("fisher", "ggn", "hessian")
    assert KINDS == ("exact", "mc", "empirical")
    assert STRUCTURES == ("diag", "filter", "kfac", "full")


def _public_callables():
    """(qualified name, callable) for every public function, class and public method of weightinfo."""
    for info in pkgutil.walk_packages(weightinfo.__path__, "weightinfo."):
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{mod.__name__}.{name}", obj
            elif inspect.isclass(obj):
                yield f"{mod.__name__}.{name}", obj
                for mname, meth in vars(obj).items():
                    if inspect.isfunction(meth) and not mname.startswith("_"):
                        yield f"{mod.__name__}.{name}.{mname}", meth


_ALLOWED = {"kind": KINDS, "curvature": CURVATURES, "structure": STRUCTURES}


def test_no_public_signature_uses_a_keyword_outside_its_vocabulary():
    """A public ``kind`` / ``curvature`` / ``structure`` argument defaults to a value of its set."""
    bad, seen = [], 0
    for qualname, fn in _public_callables():
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):  # builtins without a signature
            continue
        for key, allowed in _ALLOWED.items():
            p = params.get(key)
            if p is None:
                continue
            seen += 1
            default = p.default
            if isinstance(default, str) and default not in allowed:
                bad.append(f"{qualname}({key}={default!r}) not in {allowed}")
    assert seen >= 10  # the scan sees the curvature, information and CLI signatures
    assert not bad, "\n".join(bad)


def test_every_value_set_constant_is_a_subset_of_the_vocabulary():
    """Module constants named ``*KINDS`` / ``*CURVATURES`` / ``*STRUCTURES`` stay inside the glossary's sets."""
    sets = {"KINDS": KINDS, "CURVATURES": CURVATURES, "STRUCTURES": STRUCTURES}
    bad, seen = [], 0
    for info in pkgutil.walk_packages(weightinfo.__path__, "weightinfo."):
        mod = importlib.import_module(info.name)
        for name, value in vars(mod).items():
            for suffix, allowed in sets.items():
                if name.lstrip("_").endswith(suffix) and isinstance(value, tuple):
                    seen += 1
                    extra = [v for v in value if v not in allowed]
                    if extra:
                        bad.append(f"{mod.__name__}.{name} has {extra} outside {allowed}")
    assert seen >= 5
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda m, d: fisher(m, d, kind="ggn"), "kind"),
        (lambda m, d: fisher(m, d, structure="filter"), "structure"),
        (lambda m, d: ggn(m, d, kind="hutchinson"), "kind"),
        (lambda m, d: hessian(m, d, structure="kfac"), "structure"),
        (lambda m, d: hessian(m, d, method="mc"), "method"),
        (lambda m, d: CurvatureOperator(m, d, "exact"), "curvature"),
    ],
)
def test_values_outside_a_functions_subset_are_rejected_by_name(call, key):
    model, data = _problem()
    with pytest.raises(ValueError, match=key):
        call(model, data)


def test_results_carry_one_meaning_per_field():
    model, data = _problem()
    F, G = fisher(model, data), ggn(model, data, kind="mc", mc_samples=2)
    E = fisher(model, data, kind="empirical")
    H, Hh = hessian(model, data), hessian(model, data, method="hutchinson", n_probes=4, seed=1)
    assert (F.curvature, F.kind, F.method) == ("fisher", "exact", None)
    assert (G.curvature, G.kind, G.mc_samples) == ("ggn", "mc", 2)
    assert (E.curvature, E.kind, E.label) == ("fisher", "empirical", "empirical_fisher")
    assert (H.curvature, H.kind, H.method, H.n_probes) == ("hessian", "exact", "exact", None)
    assert (Hh.curvature, Hh.kind, Hh.method, Hh.n_probes, Hh.mc_samples) == (
        "hessian",
        "exact",
        "hutchinson",
        4,
        None,
    )
    d = Hh.to_dict()
    assert (d["curvature"], d["kind"], d["method"], d["n_probes"]) == (
        "hessian",
        "exact",
        "hutchinson",
        4,
    )
    assert E.to_dict()["quantity"] == "empirical_fisher"  # kept one release for older readers
    assert E.per_layer().title.startswith("empirical_fisher (empirical, diag)")


def test_result_fields_are_checked():
    with pytest.raises(ValueError, match="kind"):
        _curv(kind="hutchinson")
    with pytest.raises(ValueError, match="curvature"):
        _curv(curvature="laplace")


def test_curvature_code_paths_raise_no_deprecation_warning():
    model, data = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for F in (
            fisher(model, data, structure="kfac"),
            fisher(model, data, kind="mc", structure="full"),
            ggn(model, data),
            hessian(model, data, structure="full"),
            hessian(model, data, method="hutchinson", n_probes=3),
        ):
            F.per_layer(), F.to_dict(), repr(F)
        op = CurvatureOperator(model, data, "hessian")
        op.matvec(torch.ones(op.shape[0], dtype=D64)), repr(op)
        weightinfo.curvature.ggn_vector_product(model, data, torch.ones(op.shape[0], dtype=D64))


# --------------------------------------------------------------------------------------------------
# deprecated spellings: they work for one release and warn, naming the new spelling
# --------------------------------------------------------------------------------------------------


def test_curvature_operator_kind_keyword_is_a_deprecated_alias():
    model, data = _problem()
    with pytest.warns(DeprecationWarning, match="'curvature='") as rec:
        old = CurvatureOperator(model, data, kind="hessian")
    assert rec[0].filename == __file__  # points at the caller
    new = CurvatureOperator(model, data, curvature="hessian")
    assert old.curvature == "hessian" == new.curvature
    v = torch.arange(old.shape[0], dtype=D64)
    torch.testing.assert_close(old.matvec(v), new.matvec(v), rtol=0, atol=0)
    with pytest.raises(TypeError, match="only 'curvature'"):
        CurvatureOperator(model, data, curvature="ggn", kind="ggn")
    assert "curvature" in inspect.signature(CurvatureOperator).parameters
    assert "kind" not in inspect.signature(CurvatureOperator).parameters


def test_curvature_operator_kind_attribute_is_deprecated():
    model, data = _problem()
    op = CurvatureOperator(model, data, "fisher")
    with pytest.warns(DeprecationWarning, match="'curvature'"):
        assert op.kind == "fisher"


def test_products_kinds_constant_is_deprecated():
    with pytest.warns(DeprecationWarning, match="CURVATURES"):
        assert products_module.KINDS == CURVATURES
    with pytest.raises(AttributeError, match="NOPE"):
        products_module.NOPE  # noqa: B018


def test_curvature_quantity_is_deprecated():
    with pytest.warns(DeprecationWarning, match="curvature"):
        assert _curv(kind="empirical").quantity == "empirical_fisher"
    with pytest.warns(DeprecationWarning, match="curvature"):
        assert _curv("hessian").quantity == "hessian"


def test_old_positional_empirical_fisher_is_read_as_fisher_empirical():
    with pytest.warns(DeprecationWarning, match="kind='empirical'"):
        c = _curv("empirical_fisher", "empirical")
    assert (c.curvature, c.kind, c.label) == ("fisher", "empirical", "empirical_fisher")


def test_renamed_kwargs_keeps_signature_and_passes_other_arguments():
    @renamed_kwargs(old="new")
    def f(a, *, new=1, other=2):
        return a, new, other

    assert list(inspect.signature(f).parameters) == ["a", "new", "other"]
    assert f(0, other=5) == (0, 1, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(0, new=3) == (0, 3, 2)  # the new spelling does not warn
    with pytest.warns(DeprecationWarning, match="'old=' is deprecated, use 'new='"):
        assert f(0, old=4) == (0, 4, 2)
