"""Fail when the checked-in generated code under protos/ differs from a fresh `make protos`.

    .venv/bin/python -m scripts.check_protos      # `make protos-check`
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def main() -> int:
    sources = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("protos/*/v1/*.proto"))
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", "-I", ".",
             f"--python_out={out}", f"--grpc_python_out={out}",
             f"--mypy_out=quiet:{out}", f"--mypy_grpc_out=quiet:{out}", *sources],
            cwd=ROOT, check=True, env=env,
        )
        stale = []
        fresh_files = [p for p in Path(out).rglob("*") if p.name.endswith(GENERATED_SUFFIXES)]
        for fresh in fresh_files:
            checked_in = ROOT / fresh.relative_to(out)
            if not checked_in.exists() or not filecmp.cmp(fresh, checked_in, shallow=False):
                stale.append(str(checked_in.relative_to(ROOT)))
        for checked_in in ROOT.glob("protos/*/v1/*"):
            if checked_in.name.endswith(GENERATED_SUFFIXES):
                if not (Path(out) / checked_in.relative_to(ROOT)).exists():
                    stale.append(f"{checked_in.relative_to(ROOT)} (no longer generated)")
    if stale:
        print("generated code is stale; run `make protos` and commit:", *stale, sep="\n  ")
        return 1
    print(f"protos fresh ({len(fresh_files)} generated files match)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
