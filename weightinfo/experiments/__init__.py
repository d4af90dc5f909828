"""Reproductions: scripted experiments whose results are documented in ``docs/results/``.

One module per experiment (e.g. :mod:`~weightinfo.experiments.random_labels`: the information in the
weights of an MLP fit to 0, 25, 50 and 100 % random labels; :mod:`~weightinfo.experiments.certificates` and
:mod:`~weightinfo.experiments.fashion_cnn`: PAC-Bayes certificates; :mod:`~weightinfo.experiments.invariance`:
IW against the nuisance Fisher and effective information of the activations across networks;
:mod:`~weightinfo.experiments.fig1`: ln|F| over training on two moons; :mod:`~weightinfo.experiments.fig3`: the
zigzag toy; :mod:`~weightinfo.experiments.temperature`: SGD temperature and the Fisher of the minima reached;
:mod:`~weightinfo.experiments.fig4`: tr F against batch size and number of classes), each with ``run``-style functions (the
computation, plus the report when given an output folder) and its settings (the documented run and a
``--quick`` smoke test) stated once in the module. The options of each experiment are defined once, by
``weightinfo reproduce <name>`` (:mod:`weightinfo.cli.reproduce`); the scripts in the repository's
``experiments/`` folder run that command. Submodules are imported on demand.
"""

__all__ = ["QUICK_BANNER"]

#: The first line of every report of a ``--quick`` run, so that smoke-test numbers are never taken for the
#: documented result.
QUICK_BANNER = "**QUICK SMOKE TEST — not the documented result** (reduced settings, `--quick`)."
