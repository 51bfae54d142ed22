"""``python -m persisting.cli``: the same as ``python -m persisting``."""

import sys

from . import main

sys.exit(main())
