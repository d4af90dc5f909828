"""Reproductions: scripted experiments whose results are documented in ``docs/results/``.

One module per experiment (e.g. :mod:`~weightinfo.experiments.random_labels`: the information in the
weights of an MLP fit to 0, 25, 50 and 100 % random labels), each with a ``run(...) -> dict`` function
(the computation, plus the report when given an output folder) and a ``main()`` with argparse; the
scripts in the repository's ``experiments/`` folder are thin wrappers around these modules, and
``weightinfo reproduce <name>`` calls the same ``run``. Submodules are imported on demand.
"""
