"""Every paged list reads its tokens through one codec that refuses what it did not make."""

from __future__ import annotations

import base64
import json

import pytest

from card_service.entrypoints.mappers import after_entry_id, page_token
from rc_common import page_tokens
from rc_common.errors import InvalidArgument


def forged(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode()


def test_a_token_reads_back_as_the_strings_it_was_made_of() -> None:
    token = page_tokens.make("after", ["2026-01-01T00:00:00+00:00", "R1"])
    assert page_tokens.read("after", token, 2) == ["2026-01-01T00:00:00+00:00", "R1"]


@pytest.mark.parametrize(
    "token",
    [
        "zz",
        forged("[" * 1000),
        forged(json.dumps({"before": ["R1"]})),  # another list's kind
        forged(json.dumps({"after": ["R1"]})),  # wrong size
        forged(json.dumps({"after": [1, "R1"]})),  # not strings
        "A" * (page_tokens.MAX_LENGTH + 1),
    ],
)
def test_anything_else_is_refused_as_a_value_error(token: str) -> None:
    with pytest.raises(ValueError, match="not a page token"):
        page_tokens.read("after", token, 2)


def test_a_card_journal_token_pages_only_its_own_card_within_int64() -> None:
    token = page_token("6200001", 41)
    assert after_entry_id("6200001", token) == 41
    assert page_token("6200001", 0) == ""
    for bad in (
        token[: len(token) // 2],
        page_token("6200002", 41),
        page_tokens.make("journal", ["6200001", "9223372036854775808"]),
        page_tokens.make("journal", ["6200001", "-1"]),
    ):
        with pytest.raises(InvalidArgument) as refused:
            after_entry_id("6200001", bad)
        assert refused.value.field == "page_token"
