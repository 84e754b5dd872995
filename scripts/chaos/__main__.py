"""``python -m scripts.chaos``: see :mod:`scripts.chaos.cli`."""

import sys

from scripts.chaos.cli import main

sys.exit(main())
