"""Issue an operator token: ``python -m scripts.tokens --key-file KEY --subject alice --roles operator``.

The key file is the one every service reads with ``--auth-key-file`` (``--new-key`` creates it:
32 random bytes, hex, mode 0600). Roles: viewer (reads), operator and approver (ResolveAnomaly,
PutMerchant, RunSentinel, CardAdmin), approver only (DecideApproval: four eyes on refunds), test
(the simulators' FaultControl); see rc_common/policy.py.
The token is printed (or written to ``--out``, mode 0600); pass it as ``authorization: Bearer
<token>`` (grpcurl ``-H``), or to the ops CLI with ``--token-file`` or ``$RC_OPS_TOKEN``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rc_common.auth import ROLES, AuthKeyError, issue_token, load_key, write_key


def write_token(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(token + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.tokens",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--key-file", required=True, help="the services' --auth-key-file")
    parser.add_argument("--new-key", action="store_true", help="create the key file if it does not exist")
    parser.add_argument("--subject", required=True, help="who the token names (written on timelines)")
    parser.add_argument("--roles", required=True, help=f"comma-separated, of {', '.join(sorted(ROLES))}")
    parser.add_argument("--ttl", type=float, default=8 * 3600.0, help="seconds it is valid (default 8 h)")
    parser.add_argument("--out", default="", help="write the token to this file (mode 0600), not stdout")
    args = parser.parse_args(argv)
    try:
        key = write_key(Path(args.key_file)) if args.new_key else load_key(args.key_file)
        roles = [r.strip() for r in args.roles.split(",") if r.strip()]
        token = issue_token(key, args.subject, roles, args.ttl)
    except (AuthKeyError, ValueError) as exc:
        parser.error(str(exc))
    if args.out:
        write_token(Path(args.out), token)
        print(f"token for {args.subject} written to {args.out}")
    else:
        print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
