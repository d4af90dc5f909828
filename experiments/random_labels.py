"""Random labels: the information in an MLP's weights against the fraction of random training labels.

Thin script around :mod:`weightinfo.experiments.random_labels` (also ``weightinfo reproduce
random-labels``), which holds the experiment, its defaults and the report. The documented run
(``docs/results/random_labels.md``)::

    OMP_NUM_THREADS=2 WEIGHTINFO_DATA=/path/to/shared/data python experiments/random_labels.py

``--help`` lists the options (dataset, number of training images, fractions, widths, β, λ, methods,
output folder, ...).
"""

from weightinfo.experiments.random_labels import DEFAULTS, QUICK, main, run

__all__ = ["DEFAULTS", "QUICK", "main", "run"]

if __name__ == "__main__":
    main()
