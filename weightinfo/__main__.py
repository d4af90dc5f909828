"""``python -m weightinfo``: the ``weightinfo`` command (also ``torchrun ... -m weightinfo``)."""

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
