"""Every paged list reads its tokens through one codec that refuses what it did not make."""

from __future__ import annotations

import base64
import json
from pathlib import Path

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


def test_a_well_formed_token_without_our_mac_is_refused() -> None:
    """F3: a forged token of the right shape used to reach SQL; now its MAC is missing."""
    shaped = forged(json.dumps({"after": ["2026-01-01T00:00:00+00:00", "R1"]}))
    with pytest.raises(ValueError, match="not a page token"):
        page_tokens.read("after", shaped, 2)


def test_an_altered_payload_or_mac_or_another_lists_token_is_refused() -> None:
    token = page_tokens.make("after", ["2026-01-01T00:00:00+00:00", "R1"])
    payload, _, mac = token.partition(".")
    altered = forged(json.dumps({"after": ["2026-01-01T00:00:00+00:00", "R2"]})).rstrip("=")
    flipped = mac[:-2] + ("AA" if mac[-2:] != "AA" else "BA")
    other_list = page_tokens.make("before", ["R1"])
    for bad in (f"{altered}.{mac}", f"{payload}.{flipped}", f"{payload}.", other_list):
        with pytest.raises(ValueError, match="not a page token"):
            page_tokens.read("after", bad, 2)


def test_a_token_made_under_another_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_tokens, "_key", b"k" * 32)
    token = page_tokens.make("before", ["R1"])
    assert page_tokens.read("before", token, 1) == ["R1"]
    page_tokens.use_key(b"other key of 32 bytes...........")
    with pytest.raises(ValueError, match="not a page token"):
        page_tokens.read("before", token, 1)


def test_the_key_comes_from_the_file_then_the_environment_then_chance(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "page-token.key"
    key_file.write_bytes(b"from the file, 32 bytes long....\n")
    monkeypatch.setenv(page_tokens.KEY_ENV, "from the environment, long enough")
    assert page_tokens.load_key(str(key_file)) == (b"from the file, 32 bytes long....", "file")
    assert page_tokens.load_key("") == (b"from the environment, long enough", "environment")
    monkeypatch.delenv(page_tokens.KEY_ENV)
    first, source = page_tokens.load_key("")
    assert source == "random" and len(first) == 32 and first != page_tokens.load_key("")[0]
    with pytest.raises(ValueError, match="at least"):
        page_tokens.use_key(b"short")


def test_servers_in_one_process_without_a_key_share_the_one_drawn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(page_tokens.KEY_ENV, raising=False)
    monkeypatch.setattr(page_tokens, "_key", None)
    assert page_tokens.configure("") == "random"
    token = page_tokens.make("before", ["R1"])
    assert page_tokens.configure("") == "random"  # a second server in the same process
    assert page_tokens.read("before", token, 1) == ["R1"]
    key_file = tmp_path / "key"
    key_file.write_text("a configured key of enough bytes")
    assert page_tokens.configure(str(key_file)) == "file"
    with pytest.raises(ValueError, match="not a page token"):
        page_tokens.read("before", token, 1)
