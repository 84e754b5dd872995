"""The one validation layer: what each check refuses, naming the field (issue 14, item 4)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from protos.card.v1 import card_pb2
from protos.faults.v1 import faults_pb2
from protos.recharge.v1 import recharge_pb2
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common import validation
from rc_common.errors import InvalidArgument
from rc_common.faults.engine import FaultKind


def field_of(check: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(InvalidArgument) as refused:
        check(*args, **kwargs)  # type: ignore[operator]
    return refused.value.field


def test_deep_json_is_a_value_error_before_json_recurses() -> None:
    for deep in ("[" * 1000, "{" * 1000, '{"a":' * 40 + "1" + "}" * 40):
        with pytest.raises(ValueError, match="deeper"):
            validation.loads_json(deep)
    assert validation.loads_json('{"a": ["[[[[", {"b": 1}]}') == {"a": ["[[[[", {"b": 1}]}
    assert validation.loads_json("[" * 32 + "]" * 32) is not None
    # More brackets than the limit, none deep: walked, not counted, and accepted.
    many = "[" + ",".join(["{}"] * 40) + "]"
    assert validation.json_depth_ok(many) and validation.loads_json(many) == [{}] * 40
    assert not validation.json_depth_ok("[" * 33 + "]" * 33)
    with pytest.raises(ValueError, match="longer"):
        validation.loads_json(json.dumps("x" * 100), max_bytes=50)


def test_a_duration_in_seconds_fits_a_timedelta_or_is_refused() -> None:
    assert validation.seconds("min_age_seconds", 60) == timedelta(minutes=1)
    for bad in (2**63 - 1, -1, validation.MAX_SECONDS + 1):
        assert field_of(validation.seconds, "min_age_seconds", bad) == "min_age_seconds"


def test_only_declared_enum_numbers_pass() -> None:
    assert validation.enum_value("kind", FaultKind, 2) is FaultKind(2)
    assert field_of(validation.enum_value, "kind", FaultKind, 99) == "kind"
    assert field_of(validation.enum_value, "kind", FaultKind, 0) == "kind"


def test_a_page_size_is_defaulted_capped_and_never_negative() -> None:
    assert validation.page_size("page_size", 0, 50) == 50
    assert validation.page_size("page_size", 2**31 - 1, 50) == validation.MAX_PAGE_SIZE
    assert field_of(validation.page_size, "page_size", -1, 50) == "page_size"


def test_a_moment_outside_the_years_we_keep_is_a_value_error() -> None:
    assert validation.check_moment(datetime(2026, 11, 30)) == datetime(2026, 11, 30)
    for year in (1, 1969, 9999):
        with pytest.raises(ValueError, match="year"):
            validation.check_moment(datetime(year, 6, 1))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (card_pb2.GetCardRequest(card_no="\x00"), "card_no"),
        (card_pb2.OpenCardRequest(card_no="6600", holder_name="h" * 201), "holder_name"),
        (
            recharge_pb2.ListRechargeOrdersRequest(filter=recharge_pb2.OrderFilter(card_no="6" * 33)),
            "filter.card_no",
        ),
        (faults_pb2.FaultPlan(rules=[faults_pb2.FaultRule(method="m" * 129)]), "rules[0].method"),
        (wechatpay_pb2.SendTemplateMessageRequest(data={"k": "v\x00"}), "data[k]"),
        (recharge_pb2.CreateRechargeOrderRequest(idempotency_key="k" * 65), "idempotency_key"),
    ],
)
def test_every_request_is_checked_for_nul_and_column_widths(request_: object, field: str) -> None:
    assert field_of(validation.check_request, request_) == field


def test_a_request_within_the_limits_passes() -> None:
    validation.check_request(
        wechatpay_pb2.SendTemplateMessageRequest(openid="o", idempotency_key="k" * 256, data={"k": "v"})
    )
    validation.check_request(card_pb2.OpenCardRequest(card_no="6" * 32, holder_name="张三", merchant_id="m"))
