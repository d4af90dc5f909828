"""PAC-Bayes risk certificates (Fashion-MNIST PBB protocol, binary MNIST D&R style, digits).

Thin script around :mod:`weightinfo.experiments.certificates`, which holds the experiments and their
defaults (also ``weightinfo reproduce certificates``). The documented run
(``docs/results/certificates.md``)::

    OMP_NUM_THREADS=1 WEIGHTINFO_DATA=/work/shared/data python experiments/certificates.py --which fashion

``--quick`` runs tiny settings (smoke test); ``--which fashion digits`` runs some of the experiments;
``--prior-cache FILE`` keeps the trained prior mean between runs.
"""

from weightinfo.experiments.certificates import main, run_binary_mnist, run_digits, run_fashion

__all__ = ["main", "run_binary_mnist", "run_digits", "run_fashion"]

if __name__ == "__main__":
    main()
