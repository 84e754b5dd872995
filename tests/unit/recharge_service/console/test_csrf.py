"""What every POST must show: an Origin (else Referer) naming this console, and its session's token."""

from __future__ import annotations

import pytest

from recharge_service.console.csrf import origin_of, refusal

HERE = "http://127.0.0.1:8080"
TOKEN = "s3cr3t-token"


def check(
    *, origin: str | None = HERE, referer: str | None = None, sent: str = TOKEN, wanted: str = TOKEN
) -> str:
    return refusal(expected_origin=HERE, origin=origin, referer=referer, sent=sent, wanted=wanted)


def test_a_post_from_this_console_with_the_session_token_passes() -> None:
    assert check() == ""
    assert check(origin=None, referer=f"{HERE}/orders/R1?merchant=x") == ""
    assert check(origin=None, referer=None) == ""  # neither header: the token alone decides


@pytest.mark.parametrize("sent", ["", "wrong", TOKEN + "x", TOKEN[:-1]])
def test_a_missing_or_wrong_token_is_refused(sent: str) -> None:
    assert check(sent=sent) in ("CSRF_TOKEN_MISSING", "CSRF_TOKEN_MISMATCH")


def test_no_session_token_refuses_even_an_empty_form_token() -> None:
    assert check(sent="", wanted="") == "CSRF_TOKEN_MISSING"


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://127.0.0.1:8081", "https://127.0.0.1:8080", "null", "garbage"]
)
def test_another_origin_is_refused_even_with_the_right_token(origin: str) -> None:
    assert check(origin=origin) == "ORIGIN_MISMATCH"


def test_a_referer_from_elsewhere_is_refused_when_there_is_no_origin() -> None:
    assert check(origin=None, referer="https://evil.example/page") == "REFERER_MISMATCH"


def test_origins_compare_without_default_ports_and_case() -> None:
    assert origin_of("HTTPS://Console.Example:443/x") == "https://console.example"
    assert origin_of("http://[::1]:8080/") == "http://[::1]:8080"
    assert origin_of("ftp://x") == ""
    assert origin_of("http://host:notaport/") == ""
