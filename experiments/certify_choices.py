"""The measurements behind ``certify``'s defaults (``docs/results/certificates.md``, issue 9): one
``weightinfo.certify(model, data)`` call on a dataset's training set, with the model and the options given.

    OMP_NUM_THREADS=1 WEIGHTINFO_DATA=/work/shared/data python experiments/certify_choices.py DATASET MODEL \\
        '{"widths": [256, 256]}' '{"prior_schedule": null, "prior_patience": 5, "prior_holdout_min": 1, "seed": 0}'

MODEL_KWARGS and OPTIONS are JSON objects; OPTIONS are ``certify`` keywords (``seed`` included). The options
``prior_schedule=null, prior_patience=5, prior_holdout_min=1`` give the prior training the defaults had before
they were measured (constant rate; early stopping on any held-out part). Prints the certificate, the chosen
candidate and every screened candidate.
"""

import json
import sys
import time

import torch

import weightinfo
from weightinfo.data import load_dataset
from weightinfo.models import build_model


def main(argv: list[str]) -> None:
    name, model_name = argv[0], argv[1]
    kwargs = json.loads(argv[2]) if len(argv) > 2 else {}
    options = json.loads(argv[3]) if len(argv) > 3 else {}
    seed = int(options.pop("seed", 0))
    torch.set_num_threads(1)
    ds = load_dataset(name)
    torch.manual_seed(seed)
    model = build_model(model_name, ds.input_shape, ds.n_classes, **kwargs)
    t = time.perf_counter()
    c = weightinfo.certify(
        model,
        (ds.x_train, ds.y_train),
        test_data=(ds.x_test, ds.y_test),
        seed=seed,
        **options,
    )
    print(
        f"{name} {model_name} {kwargs} {options} seed {seed}: certificate {c.risk_bound:.4f} "
        f"(emp {c.empirical_risk:.4f}, KL {c.kl_nats:.2f}, m {c.m}, K {c.k_union}); chosen {c.chosen}; "
        f"stochastic test error {c.test_error:.4f}; prior {c.prior_training}; "
        f"{time.perf_counter() - t:.0f} s"
    )
    for r in c.grid:
        print(
            f"    {r['candidate']}: KL {r['kl_nats']:.2f}, screening certificate {r['screen_bound']:.4f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
