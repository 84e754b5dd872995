"""Commands validate their input on construction and name the field at fault."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from card_service.domain import commands
from card_service.domain.rules import Limits
from card_service.entrypoints import mappers
from rc_common.errors import InvalidArgument

M = "m-1"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: commands.StartPreRecharge("", "62000001", 100, M), "order_no"),
        (lambda: commands.StartPreRecharge("R1", "", 100, M), "card_no"),
        (lambda: commands.StartPreRecharge("R1", "62000001", 0, M), "pay_amount_fen"),
        (lambda: commands.StartPreRecharge("R1", "62000001", -5, M), "pay_amount_fen"),
        (lambda: commands.StartPreRecharge("R1", "62000001", 100, ""), "merchant_id"),
        (lambda: commands.StartPreRecharge("R1", "62000001", 100, "m.1"), "merchant_id"),
        (lambda: commands.ConfirmRecharge(""), "order_no"),
        (lambda: commands.ConfirmRecharge("R1", "m 1"), "merchant_id"),
        (lambda: commands.VoidRecharge(""), "order_no"),
        (lambda: commands.VoidRecharge("R1", "x", "m" * 33), "merchant_id"),
        (lambda: commands.Consume("", "62000001", 1), "request_id"),
        (lambda: commands.Consume("C1", "62000001", 0), "amount_fen"),
        (lambda: commands.Consume("C1", "62000001", 1, "商户"), "merchant_id"),
        (lambda: commands.ReverseConsume(""), "request_id"),
        (lambda: commands.OpenCard("1234567", M), "card_no"),
        (lambda: commands.OpenCard("1" * 33, M), "card_no"),
        (lambda: commands.OpenCard("1234abcd", M), "card_no"),
        (lambda: commands.OpenCard("12345678", ""), "merchant_id"),
        (lambda: commands.OpenCard("12345678", "m/1"), "merchant_id"),
        (lambda: commands.OpenCard("12345678", "m" * 33), "merchant_id"),
        (lambda: commands.SetRechargeRule("", (), Limits()), "merchant_id"),
    ],
)
def test_invalid_input_names_its_field(build: Callable[[], object], field: str) -> None:
    with pytest.raises(InvalidArgument) as invalid:
        build()
    assert invalid.value.field == field


def test_valid_commands_are_built_and_a_void_reason_may_be_empty() -> None:
    assert commands.VoidRecharge("R1").reason == ""
    assert commands.OpenCard("1" * 32, M).card_no == "1" * 32
    assert commands.OpenCard("12345678", M).card_no == "12345678"


@pytest.mark.parametrize("merchant_id", ["m", "M-1", "shop_42", "a" * 32, "0-_Z"])
def test_a_merchant_id_is_1_to_32_letters_digits_underscores_or_hyphens(merchant_id: str) -> None:
    assert commands.OpenCard("12345678", merchant_id).merchant_id == merchant_id
    assert commands.StartPreRecharge("R1", "12345678", 1, merchant_id).merchant_id == merchant_id


def test_merchant_id_is_optional_where_it_only_narrows_what_is_seen() -> None:
    assert commands.ConfirmRecharge("R1").merchant_id == ""
    assert commands.VoidRecharge("R1", "x").merchant_id == ""
    assert commands.Consume("C1", "12345678", 1).merchant_id == ""


def test_a_page_token_round_trips_and_is_bound_to_its_card() -> None:
    token = mappers.page_token("62000001", 42)
    assert token and "42" not in token
    assert mappers.after_entry_id("62000001", token) == 42
    assert mappers.after_entry_id("62000001", "") == 0
    assert mappers.page_token("62000001", 0) == ""
    for card_no, bad in (("62000002", token), ("62000001", "garbage!"), ("62000001", "bm9wZQ==")):
        with pytest.raises(InvalidArgument) as invalid:
            mappers.after_entry_id(card_no, bad)
        assert invalid.value.field == "page_token"
