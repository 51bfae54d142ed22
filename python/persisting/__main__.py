"""``python -m persisting``: the ``persisting`` command line (see persisting.cli)."""

import sys

from .cli import main

sys.exit(main())
