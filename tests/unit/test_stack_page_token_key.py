"""Every process of a started stack — each recharge-center replica and both simulators — MACs
its page tokens with the one key of the stack's workdir, so a token one replica made is good on
any other (issue 14: replicas behind one address need the same key)."""

from __future__ import annotations

import stat
from pathlib import Path

from scripts.stack import PAGE_TOKEN_KEY, build_stack


def _key_file(args: list[str]) -> str:
    return args[args.index("--page-token-key-file") + 1]


def test_every_replica_and_simulator_gets_the_stacks_one_key(tmp_path: Path) -> None:
    stack = build_stack(tmp_path, node_ids=("r1", "r2", "r3"))
    files = {_key_file(service.args) for service in stack.services}
    assert files == {str(tmp_path / PAGE_TOKEN_KEY)}
    assert len(stack.services) == 5


def test_the_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    build_stack(tmp_path)
    key = (tmp_path / PAGE_TOKEN_KEY).read_bytes()
    assert len(key) >= 32
    assert stat.S_IMODE((tmp_path / PAGE_TOKEN_KEY).stat().st_mode) == 0o600
    build_stack(tmp_path)  # a restart keeps the key (tokens handed out stay good)
    assert (tmp_path / PAGE_TOKEN_KEY).read_bytes() == key
