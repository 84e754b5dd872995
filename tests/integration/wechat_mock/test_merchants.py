"""Many merchants: every gateway request names its merchant (direct mode: its own mchid; partner
mode: our sp_mchid with its sub_mchid); a merchant sees only its own trades and refunds; direct
merchants' notifications are signed and encrypted with their own keys; the bill per merchant."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path

import grpc
import pytest

from protos.wechatpay.v1 import wechatpay_pb2 as pb
from rc_common import wechatpay_crypto as crypto
from rc_common.db import Database
from rc_common.grpc_status import error_field, error_reason
from tests.integration.wechat_mock.conftest import Launcher, Running
from tests.integration.wechat_mock.fakes import (
    PARTNER,
    SP_APPID,
    SP_MCHID,
    SUB_MCHID,
    FakeMerchant,
    Received,
    Stubs,
    direct,
    partner,
)
from tests.waiting import eventually
from wechat_mock.adapters import keys as key_files
from wechat_mock.adapters.keys import PlatformKeys, load_keys, merchant_bundle_dir
from wechat_mock.adapters.unit_of_work import create_schema

#: A direct-mode merchant with its own app id, and one that uses the provider's (--appid).
DIRECT_MCHID = "1230000109"
DIRECT_APPID = "wx1230000109abcdef"
OTHER_DIRECT = "1230000110"
DIRECT = direct(DIRECT_MCHID)
OTHER_SUB = partner("1900000202")
DIRECT_MERCHANTS = f"{DIRECT_MCHID}:{DIRECT_APPID},{OTHER_DIRECT}"
BOTH_EVENTS = {"TRANSACTION.SUCCESS", "REFUND.SUCCESS"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    """The merchant columns and their filters on both databases."""
    return str(request.param)


@pytest.fixture
async def many(launch: Launcher) -> Running:
    """A simulator with two direct merchants besides partner mode."""
    return await launch(direct_merchants=DIRECT_MERCHANTS)


async def refused(awaitable: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    return caught.value


async def not_found(awaitable: Awaitable[object], reason: str) -> None:
    error = await refused(awaitable)
    assert error.code() is grpc.StatusCode.NOT_FOUND, error
    assert (error.details() or "").startswith(f"{reason}: "), error.details()


# --- every request names exactly one merchant ---------------------------------------------------

MALFORMED = [
    (pb.MerchantRef(), "merchant"),
    (pb.MerchantRef(mchid="1999999999"), "merchant.mchid"),  # not a direct merchant here
    (pb.MerchantRef(mchid=DIRECT_MCHID, sub_mchid=SUB_MCHID), "merchant.sub_mchid"),
    (pb.MerchantRef(mchid=DIRECT_MCHID, sp_mchid=SP_MCHID), "merchant.sp_mchid"),
    (pb.MerchantRef(sub_mchid=SUB_MCHID), "merchant.sp_mchid"),
    (pb.MerchantRef(sp_mchid="1900000999", sub_mchid=SUB_MCHID), "merchant.sp_mchid"),
    (pb.MerchantRef(sp_mchid=SP_MCHID), "merchant.sub_mchid"),
    (pb.MerchantRef(sp_mchid=SP_MCHID, sub_mchid="12345"), "merchant.sub_mchid"),
    (pb.MerchantRef(sp_mchid=SP_MCHID, sub_mchid="19000002a1"), "merchant.sub_mchid"),
    (pb.MerchantRef(sp_mchid=SP_MCHID, sub_mchid="1" * 33), "merchant.sub_mchid"),
]


@pytest.mark.parametrize(("ref", "field"), MALFORMED)
async def test_a_request_without_or_with_a_malformed_merchant_is_invalid_and_writes_nothing(
    many: Running, ref: pb.MerchantRef, field: str
) -> None:
    owner = many.stubs
    await owner.paid("MM-0001")
    await owner.prepay("MM-0002")
    stubs = owner.as_merchant(ref)
    gateway = stubs.gateway
    calls: list[Awaitable[object]] = [
        gateway.CreatePrepay(
            pb.CreatePrepayRequest(
                out_trade_no="MM-0003", description="d", amount_total_fen=1, payer_openid="o", merchant=ref
            ),
            timeout=10,
        ),
        gateway.QueryOrder(pb.QueryOrderRequest(out_trade_no="MM-0001", merchant=ref), timeout=10),
        gateway.CloseOrder(pb.CloseOrderRequest(out_trade_no="MM-0002", merchant=ref), timeout=10),
        gateway.CreateRefund(
            pb.CreateRefundRequest(
                out_trade_no="MM-0001", out_refund_no="MM-0001-r", refund_fen=1, total_fen=100, merchant=ref
            ),
            timeout=10,
        ),
        gateway.QueryRefund(pb.QueryRefundRequest(out_refund_no="MM-0001-r", merchant=ref), timeout=10),
    ]
    if field != "merchant":  # an unset MerchantRef is the provider's view of the bill
        calls.append(
            gateway.DownloadTradeBill(
                pb.DownloadTradeBillRequest(bill_date="2026-11-26", merchant=ref), timeout=10
            )
        )
    for call in calls:
        error = await refused(call)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error
        assert error_field(error) == field, error.details()
    # Nothing was written: no new order, the unpaid one still open, no refund.
    await not_found(owner.query("MM-0003"), "ORDER_NOT_EXIST")
    assert (await owner.query("MM-0002")).trade_state == pb.TRADE_STATE_NOTPAY
    await not_found(owner.query_refund("MM-0001-r"), "RESOURCE_NOT_EXISTS")


async def test_a_direct_merchant_not_listed_is_refused_until_it_is(launch: Launcher) -> None:
    wechat = await launch()  # no --direct-merchants
    error = await refused(wechat.stubs.as_merchant(DIRECT).prepay("MM-0010"))
    assert (error.code(), error_field(error)) == (grpc.StatusCode.INVALID_ARGUMENT, "merchant.mchid")


# --- a merchant sees only its own trades and refunds --------------------------------------------


@pytest.mark.parametrize("other", [OTHER_SUB, DIRECT], ids=["other-sub-merchant", "direct-merchant"])
async def test_another_merchants_trade_is_not_found_and_stays_unchanged(
    many: Running, other: pb.MerchantRef
) -> None:
    owner = many.stubs
    stranger = owner.as_merchant(other)
    paid = await owner.paid("MX-0001", 100)
    await owner.prepay("MX-0002")
    accepted = await owner.refund("MX-0001", "MX-0001-a", 30)

    await not_found(stranger.query("MX-0001"), "ORDER_NOT_EXIST")
    await not_found(stranger.close("MX-0002"), "ORDER_NOT_EXIST")
    await not_found(stranger.refund("MX-0001", "MX-0001-b", 70), "ORDER_NOT_EXIST")
    await not_found(stranger.query_refund("MX-0001-a"), "RESOURCE_NOT_EXISTS")
    # The same out_refund_no as the owner's refund, same parameters: still not the stranger's.
    await not_found(stranger.refund("MX-0001", "MX-0001-a", 30), "ORDER_NOT_EXIST")

    assert (await owner.query("MX-0002")).trade_state == pb.TRADE_STATE_NOTPAY
    await not_found(owner.query_refund("MX-0001-b"), "RESOURCE_NOT_EXISTS")
    order = await owner.query("MX-0001")
    assert (order.trade_state, order.transaction_id) == (pb.TRADE_STATE_SUCCESS, paid.transaction_id)
    mine = await owner.query_refund("MX-0001-a")
    assert mine.refund_id == accepted.refund_id
    # The owner's own number space is untouched: 70 fen still refundable.
    assert (await owner.refund("MX-0001", "MX-0001-c", 70)).status == pb.REFUND_STATUS_PROCESSING


async def test_out_trade_no_and_out_refund_no_stay_unique_across_merchants(many: Running) -> None:
    owner, stranger = many.stubs, many.stubs.as_merchant(DIRECT)
    first = await owner.prepay("MU-0001", 100)
    error = await refused(stranger.prepay("MU-0001", 100))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "OUT_TRADE_NO_USED")
    assert await owner.prepay("MU-0001", 100) == first  # the owner's replay still answers
    # A refund number the owner used cannot be reused by another merchant for its own trade.
    await owner.pay("MU-0001")
    await owner.refund("MU-0001", "MU-shared-r", 10)
    await stranger.paid("MU-0002")
    error = await refused(stranger.refund("MU-0002", "MU-shared-r", 10))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.FAILED_PRECONDITION, "REFUND_NO_CONFLICT")
    await not_found(stranger.query_refund("MU-shared-r"), "RESOURCE_NOT_EXISTS")


async def test_transactions_and_refunds_carry_their_merchant(many: Running) -> None:
    partner_stubs, direct_stubs = many.stubs, many.stubs.as_merchant(DIRECT)
    provider_appid_direct = many.stubs.as_merchant(direct(OTHER_DIRECT))

    paid = await partner_stubs.paid("MT-0001")
    queried = await partner_stubs.query("MT-0001")
    for tx in (paid, queried):
        assert (tx.mchid, tx.sp_mchid, tx.sub_mchid, tx.appid) == ("", SP_MCHID, SUB_MCHID, SP_APPID)
    refund = await partner_stubs.refund("MT-0001", "MT-0001-r", 100)
    assert refund.merchant == PARTNER
    assert (await partner_stubs.query_refund("MT-0001-r")).merchant == PARTNER

    paid = await direct_stubs.paid("MT-0002")
    queried = await direct_stubs.query("MT-0002")
    for tx in (paid, queried):
        assert (tx.mchid, tx.sp_mchid, tx.sub_mchid, tx.appid) == (DIRECT_MCHID, "", "", DIRECT_APPID)
    refund = await direct_stubs.refund("MT-0002", "MT-0002-r", 100)
    assert refund.merchant == DIRECT
    settled = await direct_stubs.payer.SettleRefund(
        pb.SettleRefundRequest(out_refund_no="MT-0002-r", status=pb.REFUND_STATUS_SUCCESS), timeout=5
    )
    assert settled.merchant == DIRECT

    # A direct merchant listed without an app id uses --appid.
    assert (await provider_appid_direct.paid("MT-0003")).appid == SP_APPID


# --- notifications: whose keys, which fields ------------------------------------------------------


def signed_by(item: Received, keys: PlatformKeys) -> bool:
    headers = item.headers
    return crypto.verify(
        keys.public_key_pem,
        headers["Wechatpay-Timestamp"],
        headers["Wechatpay-Nonce"],
        item.body,
        headers["Wechatpay-Signature"],
    )


def direct_keys_from_files(keys_dir: str) -> PlatformKeys:
    """What a verifier of the direct merchant's notifications reads: the files of its merchant
    bundle (WeChat's private key is not among them, so ``private_key_pem`` stays empty)."""
    directory = merchant_bundle_dir(keys_dir, DIRECT_MCHID)
    assert not (directory / key_files.PRIVATE_KEY_FILE).exists()
    return PlatformKeys(
        private_key_pem=b"",
        public_key_pem=(directory / key_files.PUBLIC_KEY_FILE).read_bytes(),
        public_key_id=(directory / key_files.PUBLIC_KEY_ID_FILE).read_text(),
        apiv3_key=(directory / key_files.APIV3_KEY_FILE).read_text(),
    )


def public_side(keys: PlatformKeys) -> tuple[bytes, str, str]:
    return keys.public_key_pem, keys.public_key_id, keys.apiv3_key


async def test_partner_notifications_use_the_providers_keys_and_name_the_sub_merchant(
    many: Running, merchant: FakeMerchant
) -> None:
    provider = many.simulator.keys
    await many.stubs.paid("MN-0001", 500)
    await many.stubs.refund("MN-0001", "MN-0001-r", 200, 500)
    await merchant.wait_for(lambda items: {i.event_type for i in items} >= BOTH_EVENTS)
    (tx,) = merchant.of("TRANSACTION.SUCCESS")
    (rf,) = merchant.of("REFUND.SUCCESS")
    for item in (tx, rf):
        assert crypto.verify_headers(provider.public_key_pem, provider.public_key_id, item.headers, item.body)
        assert not signed_by(item, many.simulator.direct_keys[DIRECT_MCHID])
    plain = tx.plain(provider.apiv3_key)
    assert (plain["sp_mchid"], plain["sub_mchid"], plain["sp_appid"]) == (SP_MCHID, SUB_MCHID, SP_APPID)
    assert "mchid" not in plain and "appid" not in plain
    refund = rf.plain(provider.apiv3_key)
    assert (refund["sp_mchid"], refund["sub_mchid"]) == (SP_MCHID, SUB_MCHID)
    assert refund["out_refund_no"] == "MN-0001-r"
    assert "mchid" not in refund


async def test_direct_notifications_use_the_merchants_own_keys_and_name_its_mchid(
    many: Running, merchant: FakeMerchant
) -> None:
    provider = many.simulator.keys
    own = direct_keys_from_files(many.settings.keys_dir)
    assert public_side(own) == public_side(many.simulator.direct_keys[DIRECT_MCHID])
    assert own.public_key_id != provider.public_key_id and own.apiv3_key != provider.apiv3_key
    stubs = many.stubs.as_merchant(DIRECT)
    paid = await stubs.paid("MN-0002", 300)
    await stubs.refund("MN-0002", "MN-0002-r", 300, 300)
    await merchant.wait_for(lambda items: {i.event_type for i in items} >= BOTH_EVENTS)
    (tx,) = merchant.of("TRANSACTION.SUCCESS")
    (rf,) = merchant.of("REFUND.SUCCESS")
    for item in (tx, rf):
        assert item.headers["Wechatpay-Serial"] == own.public_key_id
        assert crypto.verify_headers(own.public_key_pem, own.public_key_id, item.headers, item.body)
        assert not signed_by(item, provider)  # NOT the provider's signature
        with pytest.raises(ValueError, match="does not decrypt"):
            item.plain(provider.apiv3_key)
    plain = tx.plain(own.apiv3_key)
    assert (plain["mchid"], plain["appid"]) == (DIRECT_MCHID, DIRECT_APPID)
    assert plain["payer"] == {"openid": paid.payer_openid}
    assert not {"sp_mchid", "sub_mchid", "sp_appid"} & set(plain)
    refund = rf.plain(own.apiv3_key)
    assert (refund["mchid"], refund["out_refund_no"]) == (DIRECT_MCHID, "MN-0002-r")
    assert not {"sp_mchid", "sub_mchid"} & set(refund)


async def test_a_direct_merchants_keys_are_created_at_start_in_the_providers_layout(
    launch: Launcher, tmp_path: Path
) -> None:
    keys_dir = tmp_path / "fresh-keys"
    wechat = await launch(keys_dir=str(keys_dir), direct_merchants=DIRECT_MERCHANTS)
    provider_bundle = sorted(p.name for p in merchant_bundle_dir(keys_dir).iterdir() if p.is_file())
    provider_platform = sorted(p.name for p in (keys_dir / "platform").iterdir() if p.is_file())
    for mchid in (DIRECT_MCHID, OTHER_DIRECT):
        bundle, platform = (keys_dir / side / "direct" / mchid for side in ("merchant", "platform"))
        assert sorted(p.name for p in bundle.iterdir()) == provider_bundle
        assert sorted(p.name for p in platform.iterdir()) == provider_platform
        assert (bundle / "mchid.txt").read_text() == mchid
        assert wechat.simulator.direct_keys[mchid] == load_keys(keys_dir, mchid)  # reused as they are


# --- the trade bill per merchant ------------------------------------------------------------------


async def test_the_bill_of_a_merchant_lists_only_its_rows(many: Running) -> None:
    mine, other, own = many.stubs, many.stubs.as_merchant(OTHER_SUB), many.stubs.as_merchant(DIRECT)
    first = await mine.paid("MB-0001", 300)
    await mine.paid("MB-0002", 500)
    await mine.refund("MB-0002", "MB-0002-r", 200, 500)
    await other.paid("MB-0003", 700)
    await own.paid("MB-0004", 900)
    await own.refund("MB-0004", "MB-0004-r", 900, 900)

    async def settled() -> bool:
        statuses = [(await s.query_refund(n)).status for s, n in ((mine, "MB-0002-r"), (own, "MB-0004-r"))]
        return statuses == [pb.REFUND_STATUS_SUCCESS] * 2

    await eventually(settled, what="both refunds settled")
    day = first.success_time[:10]

    def rows(bill: pb.DownloadTradeBillResponse) -> list[tuple[str, str, str]]:
        return [(r.mchid, r.trade_state, r.out_trade_no) for r in bill.rows]

    bill = await mine.bill(day, PARTNER)
    assert rows(bill) == [
        (SUB_MCHID, "SUCCESS", "MB-0001"),
        (SUB_MCHID, "SUCCESS", "MB-0002"),
        (SUB_MCHID, "REFUND", "MB-0002"),
    ]
    assert (bill.total_paid_fen, bill.total_refunded_fen) == (800, 200)
    bill = await mine.bill(day, OTHER_SUB)
    assert rows(bill) == [("1900000202", "SUCCESS", "MB-0003")]
    assert (bill.total_paid_fen, bill.total_refunded_fen) == (700, 0)
    bill = await mine.bill(day, DIRECT)
    assert rows(bill) == [(DIRECT_MCHID, "SUCCESS", "MB-0004"), (DIRECT_MCHID, "REFUND", "MB-0004")]
    assert (bill.total_paid_fen, bill.total_refunded_fen) == (900, 900)
    assert list((await mine.bill(day, partner("1900000299"))).rows) == []

    everything = await mine.bill(day)  # no MerchantRef: the service provider's view
    assert sorted(rows(everything)) == sorted(
        [
            (SUB_MCHID, "SUCCESS", "MB-0001"),
            (SUB_MCHID, "SUCCESS", "MB-0002"),
            (SUB_MCHID, "REFUND", "MB-0002"),
            ("1900000202", "SUCCESS", "MB-0003"),
            (DIRECT_MCHID, "SUCCESS", "MB-0004"),
            (DIRECT_MCHID, "REFUND", "MB-0004"),
        ]
    )
    assert (everything.total_paid_fen, everything.total_refunded_fen) == (2400, 1100)


# --- the database of an older simulator -----------------------------------------------------------


async def test_a_database_without_the_merchant_columns_is_refused_at_start(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE payment_orders (out_trade_no VARCHAR(32) PRIMARY KEY)")
        with pytest.raises(RuntimeError, match=r"payment_orders\.merchant_mode"):
            await create_schema(db)
    finally:
        await db.dispose()


async def test_stubs_act_for_the_partner_sub_merchant_by_default(stubs: Stubs) -> None:
    assert stubs.merchant == PARTNER
    assert (await stubs.paid("MD-0001")).sub_mchid == SUB_MCHID
