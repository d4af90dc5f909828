"""MC step of a risk certificate: standard (m networks on the whole set) vs per-example estimator.

For a trained stochastic MLP Q = N(μ, diag σ²) (prior mean trained on the prior half, posterior fitted on
fquad on the bound half) on the Fashion-MNIST bound set (PBB split, n = 30 000), the
empirical Gibbs risk is estimated two ways and turned into an upper bound û with confidence 1 − δ′:

* standard: m networks w_j ∼ Q, each on all n examples; û = kl⁻¹(L̂_m, ln(1/δ′)/m)
  (``weightinfo.certificates.risk.gibbs_errors_standard``);
* per-example: an independent draw for every (example, repetition), exact for Linear layers by the local
  reparameterisation (conv nets: real per-example conv weight draws); û = kl⁻¹(L̂, ln(1/δ′)/(m·n))
  (``gibbs_error_per_example``).

The table gives the MC gap û − L̂ and the wall time of each estimate. Run::

    OMP_NUM_THREADS=2 WEIGHTINFO_DATA=/work/shared/data python benchmarks/certify_mc.py

Results: ``docs/benchmarks_certify.md``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from weightinfo import bounds
from weightinfo.certificates import posterior_fit as pf
from weightinfo.certificates import risk as R
from weightinfo.data import load_dataset
from weightinfo.models import build_model


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int, nargs="+", default=[600, 600])
    p.add_argument("--prior-epochs", type=int, default=2)
    p.add_argument("--posterior-epochs", type=int, default=1)
    p.add_argument("--standard-m", type=int, nargs="+", default=[5, 20, 50])
    p.add_argument("--per-example-m", type=int, nargs="+", default=[1, 3])
    p.add_argument("--delta-mc", type=float, default=0.01)
    p.add_argument("--json", default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    ds = load_dataset("fashion-mnist")
    pi, bi = ds.prior_bound_split(0.5, a.seed)
    torch.manual_seed(a.seed)
    model = build_model("mlp", ds.input_shape, ds.n_classes, widths=tuple(a.widths), dropout=0.2)
    t = time.perf_counter()
    w0 = pf.train_prior_mean(
        model,
        (ds.x_train[pi], ds.y_train[pi]),
        epochs=a.prior_epochs,
        lr=0.05,
        batch_size=128,
        seed=a.seed,
    )
    xb, yb = ds.x_train[bi], ds.y_train[bi]
    mean, var = pf.fit_posterior(
        model.eval(),
        (xb, yb),
        prior_mean=w0,
        prior_scale=0.03,
        init_mean=w0,
        objective_name="fquad",
        n_bound=len(bi),
        delta=0.025,
        epochs=a.posterior_epochs,
        batch_size=250,
        seed=a.seed,
    )
    std = {k: v.sqrt() for k, v in var.items()}
    print(f"posterior trained in {time.perf_counter() - t:.0f}s; n = {len(bi)}", flush=True)
    n = len(bi)
    rows = []
    for kind, ms in (("standard", a.standard_m), ("per_example", a.per_example_m)):
        for m in ms:
            gen = torch.Generator().manual_seed(a.seed + m)
            t = time.perf_counter()
            if kind == "standard":
                emp = float(R.gibbs_errors_standard(model, xb, yb, mean, std, m, gen).mean())
            else:
                emp, _ = R.gibbs_error_per_example(model, xb, yb, mean, var, m, gen)
            dt = time.perf_counter() - t
            u = bounds.certificate(
                emp, 0.0, n, m, 0.025, a.delta_mc, per_example=kind == "per_example"
            ).mc_upper
            rows.append(
                dict(
                    estimator=kind,
                    m=m,
                    draws=m if kind == "standard" else m * n,
                    forward_passes=m,
                    emp=emp,
                    mc_upper=u,
                    mc_gap=u - emp,
                    wall_s=dt,
                )
            )
            print(json.dumps(rows[-1]), flush=True)
    print("| estimator | m | weight draws | L̂ | û | MC gap û − L̂ | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['estimator']} | {r['m']} | {r['draws']:,} | {r['emp']:.4f} | {r['mc_upper']:.4f} "
            f"| {r['mc_gap']:.4f} | {r['wall_s']:.1f} |"
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "n": n, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
