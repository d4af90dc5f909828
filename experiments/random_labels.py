"""Random labels: the information in an MLP's weights against the fraction of random training labels.

Runs ``weightinfo reproduce random-labels`` with this script's arguments (the options are defined there,
once; ``--help`` lists them: dataset, number of training images, fractions, widths, β, λ, methods, output
folder, ...); the experiment, its defaults and the report are in :mod:`weightinfo.experiments.random_labels`.
The documented run (``docs/results/random_labels.md``)::

    OMP_NUM_THREADS=2 WEIGHTINFO_DATA=/path/to/shared/data python experiments/random_labels.py --out docs/results

Without ``--out`` the results go to a fresh folder ``runs/random-labels-<UTC time>``.
"""

import sys

from weightinfo.cli import main

COMMAND = ["reproduce", "random-labels"]

if __name__ == "__main__":
    main([*COMMAND, *sys.argv[1:]])
