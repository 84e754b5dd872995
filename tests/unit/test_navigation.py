"""Any rule in one place: the order state machine, the confirm retry policy, the refund-after-void
guard and the list of fault kinds are each defined in exactly one file, and the README's layout
section names that file (issue 11's navigation promise)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("rc_common", "recharge_service", "card_service", "wechat_mock", "scripts")

#: rule -> (its one file, patterns that define it: each may match in that file only). The file's
#: first directory is the tree searched (the simulators have their own state machines).
RULES = {
    "order state machine": (
        "recharge_service/domain/order.py",
        [r"^TRANSITIONS\b.*=", r"^def can_transition\(", r"self\.status = target"],
    ),
    "confirm and remote retry policy": (
        "recharge_service/adapters/retrying.py",
        [r"^class RetryPolicy\b", r"^async def with_retries\("],
    ),
    "refund-after-void guard": (
        "recharge_service/domain/answers.py",
        [r"^class VoidProof\b", r"^def is_genuine\("],
    ),
    "fault kinds": (
        "rc_common/faults/engine.py",
        [r"^class FaultKind\b", r"= pb\.FAULT_KIND_"],
    ),
    "exponential backoff with jitter": ("rc_common/clock.py", [r"2 \*\* \("]),
}


def sources(home: str) -> list[Path]:
    trees = TREES if home.startswith("rc_common/") else (home.split("/")[0], "rc_common", "scripts")
    return [
        path
        for tree in trees
        for path in sorted((ROOT / tree).rglob("*.py"))
        if not path.name.endswith(("_pb2.py", "_pb2_grpc.py"))
    ]


def layout_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Layout")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_is_defined_in_one_file(rule: str) -> None:
    home, patterns = RULES[rule]
    for pattern in patterns:
        found = {
            str(path.relative_to(ROOT))
            for path in sources(home)
            if re.search(pattern, path.read_text(encoding="utf-8"), re.MULTILINE)
        }
        assert found == {home}, f"{rule}: {pattern!r} defined in {sorted(found)}, expected only {home}"


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_readme_layout_names_where_each_rule_lives(rule: str) -> None:
    home, _ = RULES[rule]
    section = layout_section()
    short = home.split("/", 1)[1]  # the README may name it under its service's heading
    assert home in section or short in section, f"README layout does not name {home} ({rule})"
