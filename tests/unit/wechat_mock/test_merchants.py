"""Merchants (pure): which MerchantRef names which merchant, the documents each mode gets, the
settings that list the direct merchants, and where their keys live."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rc_common.errors import InvalidArgument, Refused
from wechat_mock.adapters.keys import (
    ensure_direct_keys,
    ensure_keys,
    load_keys,
    merchant_bundle_dir,
    platform_dir,
)
from wechat_mock.domain.merchants import Accounts, Merchant, MerchantMode, MerchantRef
from wechat_mock.domain.notifications import refund_draft, transaction_draft
from wechat_mock.domain.payments import PaymentOrder, PrepayTerms
from wechat_mock.domain.refunds import Refund, RefundStatus, RefundTerms
from wechat_mock.settings import WechatSettings

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
SP, SUB, DIRECT = "1900000109", "1900000201", "1230000109"
ACCOUNTS = Accounts(SP, "wxsp", {DIRECT: "wxdirect"})
PARTNER = Merchant.partner(SP, SUB)
OWN = Merchant.direct(DIRECT)


def field_of(ref: MerchantRef) -> str:
    with pytest.raises(InvalidArgument) as caught:
        ACCOUNTS.require(ref)
    return caught.value.field


def test_a_ref_names_exactly_one_mode() -> None:
    assert ACCOUNTS.require(MerchantRef(sp_mchid=SP, sub_mchid=SUB)) == PARTNER
    assert ACCOUNTS.require(MerchantRef(mchid=DIRECT)) == OWN
    assert ACCOUNTS.optional(MerchantRef()) is None
    assert field_of(MerchantRef()) == "merchant"
    assert field_of(MerchantRef(mchid=DIRECT, sp_mchid=SP)) == "merchant.sp_mchid"
    assert field_of(MerchantRef(mchid=DIRECT, sub_mchid=SUB)) == "merchant.sub_mchid"
    assert field_of(MerchantRef(mchid="1999999999")) == "merchant.mchid"
    assert field_of(MerchantRef(sub_mchid=SUB)) == "merchant.sp_mchid"
    assert field_of(MerchantRef(sp_mchid="1900000999", sub_mchid=SUB)) == "merchant.sp_mchid"
    assert field_of(MerchantRef(sp_mchid=SP)) == "merchant.sub_mchid"
    for bad in ("12345", "1" * 33, "19000002x1", " 1900000201"):
        assert field_of(MerchantRef(sp_mchid=SP, sub_mchid=bad)) == "merchant.sub_mchid"
    with pytest.raises(InvalidArgument):
        ACCOUNTS.optional(MerchantRef(sp_mchid=SP))


def test_merchants_ids_signer_and_app_id() -> None:
    assert (PARTNER.mode, PARTNER.own_mchid, PARTNER.signer) == (MerchantMode.PARTNER, SUB, "")
    assert (OWN.mode, OWN.own_mchid, OWN.signer) == (MerchantMode.DIRECT, DIRECT, DIRECT)
    assert PARTNER.ids() == {"sp_mchid": SP, "sub_mchid": SUB}
    assert OWN.ids() == {"mchid": DIRECT}
    assert (ACCOUNTS.appid(PARTNER), ACCOUNTS.appid(OWN)) == ("wxsp", "wxdirect")


def paid_order(merchant: Merchant) -> PaymentOrder:
    order = PaymentOrder(
        "RC-000001",
        "wx1",
        PrepayTerms("d", 100, "o1", None, ""),
        NOW,
        merchant=merchant,
        appid=ACCOUNTS.appid(merchant),
    )
    order.pay(NOW, "", "4200x")
    return order


def test_an_out_trade_no_of_another_merchant_is_used() -> None:
    order = paid_order(PARTNER)
    with pytest.raises(Refused) as caught:
        order.check_replay(order.terms, Merchant.partner(SP, "1900000202"))
    assert caught.value.reason == "OUT_TRADE_NO_USED"
    assert order.belongs_to(PARTNER) and not order.belongs_to(OWN)


def test_partner_documents_name_the_provider_and_the_sub_merchant() -> None:
    order = paid_order(PARTNER)
    draft = transaction_draft(order)
    assert draft.signer == ""
    head = {k: draft.resource[k] for k in ("sp_appid", "sp_mchid", "sub_mchid")}
    assert head == {"sp_appid": "wxsp", "sp_mchid": SP, "sub_mchid": SUB}
    assert "mchid" not in draft.resource and "appid" not in draft.resource
    assert draft.resource["payer"] == {"sp_openid": "o1"}
    refund = Refund(
        "R1", "50x", RefundTerms(order.out_trade_no, 10, 100), "4200x", "", NOW, NOW, RefundStatus.SUCCESS,
        merchant=PARTNER,
    )  # fmt: skip
    refund.settle(NOW)
    refund_doc = refund_draft(refund, order)
    assert refund_doc.signer == ""
    assert (refund_doc.resource["sp_mchid"], refund_doc.resource["sub_mchid"]) == (SP, SUB)
    assert "mchid" not in refund_doc.resource


def test_direct_documents_name_the_merchant_and_are_its_own_to_sign() -> None:
    order = paid_order(OWN)
    draft = transaction_draft(order)
    assert draft.signer == DIRECT
    assert (draft.resource["mchid"], draft.resource["appid"]) == (DIRECT, "wxdirect")
    assert draft.resource["payer"] == {"openid": "o1"}
    assert not {"sp_mchid", "sub_mchid", "sp_appid"} & set(draft.resource)
    refund = Refund(
        "R1", "50x", RefundTerms(order.out_trade_no, 10, 100), "4200x", "", NOW, NOW, RefundStatus.CLOSED,
        merchant=OWN,
    )  # fmt: skip
    refund.settle(NOW)
    refund_doc = refund_draft(refund, order)
    assert refund_doc.signer == DIRECT and refund_doc.resource["mchid"] == DIRECT


def test_direct_merchants_setting() -> None:
    settings = WechatSettings(direct_merchants=f" {DIRECT}:wxdirect , 1230000110,")
    settings.validate()
    assert settings.direct_accounts == {DIRECT: "wxdirect", "1230000110": settings.appid}
    assert WechatSettings().direct_accounts == {}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("12345", "not a mchid"),
        ("abc1230000109", "not a mchid"),
        (f"{DIRECT}:", "empty app id"),
        (f"{DIRECT},{DIRECT}:wx2", "listed twice"),
        (SP, "service provider's --mchid"),
        ("../../etc", "not a mchid"),
    ],
)
def test_direct_merchants_setting_refuses(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        WechatSettings(direct_merchants=value).validate()


def test_direct_keys_live_in_the_keys_dir_and_outlive_the_listing(tmp_path: Path) -> None:
    provider = ensure_keys(tmp_path)
    keys = ensure_direct_keys(tmp_path, [DIRECT])
    assert merchant_bundle_dir(tmp_path, DIRECT) == tmp_path / "merchant" / "direct" / DIRECT
    assert platform_dir(tmp_path, DIRECT) == tmp_path / "platform" / "direct" / DIRECT
    assert keys[DIRECT] == load_keys(tmp_path, DIRECT)
    assert keys[DIRECT].public_key_id != provider.public_key_id
    assert ensure_keys(tmp_path) == provider  # the provider's keys are untouched
    # No longer listed: its keys are still loaded (its trades' notifications are still signed).
    assert ensure_direct_keys(tmp_path, []) == keys
