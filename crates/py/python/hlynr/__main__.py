"""``python -m hlynr ...`` is the ``hlynr`` command (train, resume, eval, ...)."""

import sys

from . import _hlynr


def main() -> None:
    _hlynr.cli(["hlynr", *sys.argv[1:]])


if __name__ == "__main__":
    main()
