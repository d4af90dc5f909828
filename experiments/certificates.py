"""PAC-Bayes risk certificates (Fashion-MNIST PBB protocol, binary MNIST D&R style, digits).

Runs ``weightinfo reproduce certificates`` with this script's arguments (the options are defined there,
once; ``--help`` lists them); the experiments and their defaults are in
:mod:`weightinfo.experiments.certificates`. The documented run (``docs/results/certificates.md``)::

    OMP_NUM_THREADS=1 WEIGHTINFO_DATA=/work/shared/data python experiments/certificates.py --which fashion --out docs/results

``--quick`` runs tiny settings (smoke test); ``--which fashion,digits`` runs some of the experiments;
``--prior-cache FILE`` keeps the trained prior mean between runs. Without ``--out`` the results go to a
fresh folder ``runs/certificates-<UTC time>``.
"""

import sys

from weightinfo.cli import main

COMMAND = ["reproduce", "certificates"]

if __name__ == "__main__":
    main([*COMMAND, *sys.argv[1:]])
