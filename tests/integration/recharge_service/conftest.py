"""Fixtures: a real SQLite database in tmp_path, fake ports, signed WeChat notifications."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rc_common import wechatpay_crypto as crypto
from rc_common.db import Database
from recharge_service.adapters.unit_of_work import uow_factory
from recharge_service.adapters.wechat_notifications import NotificationOpener
from recharge_service.bootstrap import create_schema
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer.commands import CreateRechargeOrder
from recharge_service.service_layer.create import create_recharge_order
from recharge_service.service_layer.deps import Deps
from tests.integration.recharge_service.fakes import (
    MERCHANT,
    SP_MCHID,
    SUB_MCHID,
    Clock,
    FakeCard,
    FakePayments,
    MemoryMerchants,
)
from wechat_mock.adapters.keys import PlatformKeys, ensure_keys, merchant_bundle_dir

MCHID = SP_MCHID
CARD_NO = "8800000000000001"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'recharge.db'}")
    await create_schema(database)
    yield database
    await database.dispose()


@pytest.fixture
def card() -> FakeCard:
    return FakeCard(bonus_fen=2_000)


@pytest.fixture
def payments() -> FakePayments:
    return FakePayments()


@pytest.fixture
def merchants() -> MemoryMerchants:
    """The test merchant ``shop-a`` (partner mode, every channel, orders expire after 30 minutes)."""
    return MemoryMerchants.of()


@pytest.fixture
async def deps(
    db: Database, card: FakeCard, payments: FakePayments, merchants: MemoryMerchants
) -> AsyncIterator[Deps]:
    built = Deps(uow=uow_factory(db), card=card, payments=payments, merchants=merchants, sp_mchid=MCHID)
    yield built
    await built.background.close(5.0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def timed(
    db: Database, card: FakeCard, payments: FakePayments, clock: Clock, merchants: MemoryMerchants
) -> AsyncIterator[Deps]:
    """Like ``deps``, on a clock the test moves (orders expire after 30 minutes)."""
    built = Deps(
        uow=uow_factory(db), card=card, payments=payments, merchants=merchants, sp_mchid=MCHID, clock=clock
    )
    yield built
    await built.background.close(5.0)


@pytest.fixture(scope="session")
def platform_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PlatformKeys]:
    """The provider's merchant bundle (what the recharge center reads), and WeChat's keys that
    sign for it (what a test playing WeChat signs with)."""
    directory = tmp_path_factory.mktemp("wechat-keys")
    keys = ensure_keys(directory)
    return merchant_bundle_dir(directory), keys


@pytest.fixture
def opener(platform_keys: tuple[Path, PlatformKeys]) -> NotificationOpener:
    return NotificationOpener(platform_keys[0], max_skew_s=300)


class Wechat:
    """Builds notifications the way WeChat Pay signs and encrypts them."""

    def __init__(self, keys: PlatformKeys) -> None:
        self.keys = keys

    def body(
        self, event_type: str, resource: dict[str, Any], *, associated_data: str = "transaction"
    ) -> bytes:
        sealed = crypto.encrypt_resource(
            self.keys.apiv3_key, json.dumps(resource), associated_data, original_type=associated_data
        )
        return crypto.build_notification_body(
            notification_id=str(uuid.uuid4()),
            create_time="2026-11-26T12:00:00+08:00",
            event_type=event_type,
            summary="支付成功",
            resource=sealed,
        )

    def headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        return crypto.signed_headers(
            self.keys.private_key_pem,
            self.keys.public_key_id,
            body,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )

    def paid(self, order: RechargeOrder, **overrides: Any) -> tuple[dict[str, str], bytes]:
        resource: dict[str, Any] = {  # partner mode: the provider's sp_mchid, the merchant's sub_mchid
            "sp_mchid": MCHID,
            "sub_mchid": SUB_MCHID,
            "sp_appid": "wxd678efh567hg6787",
            "out_trade_no": order.order_no,
            "transaction_id": f"4200{order.order_no[-10:]}",
            "trade_state": "SUCCESS",
            "success_time": "2026-11-26T12:00:05+08:00",
            "payer": {"sp_openid": order.payer_openid},
            "amount": {"total": order.pay_amount_fen, "payer_total": order.pay_amount_fen, "currency": "CNY"},
        }
        resource.update(overrides)
        body = self.body("TRANSACTION.SUCCESS", resource)
        return self.headers(body), body

    def paid_direct(self, order: RechargeOrder, mchid: str, **overrides: Any) -> tuple[dict[str, str], bytes]:
        """A payment notification the way direct mode sends it: the merchant's own ``mchid``."""
        resource: dict[str, Any] = {
            "mchid": mchid,
            "appid": "wx2222222222222222",
            "out_trade_no": order.order_no,
            "transaction_id": f"4200{order.order_no[-10:]}",
            "trade_state": "SUCCESS",
            "success_time": "2026-11-26T12:00:05+08:00",
            "payer": {"openid": order.payer_openid},
            "amount": {"total": order.pay_amount_fen, "payer_total": order.pay_amount_fen, "currency": "CNY"},
        }
        resource.update(overrides)
        body = self.body("TRANSACTION.SUCCESS", resource)
        return self.headers(body), body

    def refund(
        self, order: RechargeOrder, status: str = "SUCCESS", **overrides: Any
    ) -> tuple[dict[str, str], bytes]:
        resource: dict[str, Any] = {
            "sp_mchid": MCHID,
            "sub_mchid": SUB_MCHID,
            "out_trade_no": order.order_no,
            "transaction_id": order.transaction_id,
            "out_refund_no": order.out_refund_no,
            "refund_id": "50300000001",
            "refund_status": status,
            "amount": {"total": order.pay_amount_fen, "refund": order.pay_amount_fen},
        }
        resource.update(overrides)
        body = self.body(f"REFUND.{status}", resource, associated_data="refund")
        return self.headers(body), body


@pytest.fixture
def wechat(platform_keys: tuple[Path, PlatformKeys]) -> Wechat:
    return Wechat(platform_keys[1])


async def new_order(
    deps: Deps, key: str | None = None, pay_amount_fen: int = 100_000, merchant_id: str = MERCHANT
) -> RechargeOrder:
    """An order AWAITING_PAYMENT (through the real use case, fakes behind it)."""
    command = CreateRechargeOrder(
        CARD_NO, pay_amount_fen, 2, key or uuid.uuid4().hex, "o-payer-1", merchant_id
    )
    order = await create_recharge_order(command, deps)
    assert order.status is OrderStatus.AWAITING_PAYMENT
    return order


async def reload(deps: Deps, order_no: str) -> RechargeOrder:
    async with deps.uow(readonly=True) as uow:
        order = await uow.orders.get(order_no)
    assert order is not None
    return order
