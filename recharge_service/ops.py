"""``python -m recharge_service.ops``: the operator CLI (see ``entrypoints/ops_cli.py``)."""

from __future__ import annotations

import sys

from recharge_service.entrypoints.ops_cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
