"""``python -m weightinfo.cli``: the ``weightinfo`` command."""

from . import main

if __name__ == "__main__":  # pragma: no cover
    main()
