"""PAC-Bayes risk certificates (Fashion-MNIST PBB protocol, binary MNIST D&R style, digits).

Thin script around :mod:`weightinfo.experiments.certificates`, which holds the experiments and their
defaults. The documented run (``docs/results/certificates.md``)::

    OMP_NUM_THREADS=2 WEIGHTINFO_DATA=/work/shared/data python experiments/certificates.py

``--quick`` runs tiny settings (smoke test); ``--which fashion`` runs one experiment.
"""

from weightinfo.experiments.certificates import main, run_binary_mnist, run_digits, run_fashion

__all__ = ["main", "run_binary_mnist", "run_digits", "run_fashion"]

if __name__ == "__main__":
    main()
