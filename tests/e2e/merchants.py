"""The two merchants every e2e stack opens side by side — `make run`'s demo merchants:

* ``teahouse`` (:data:`DIRECT`): WeChat Pay direct mode, its own mchid and keys; bonus pay >= ¥1000
  get ¥200, >= ¥500 get ¥80, >= ¥200 get ¥20;
* ``bakery`` (:data:`PARTNER`): partner mode, the provider's sp_mchid with its sub_mchid and the
  provider's keys; bonus pay >= ¥300 get ¥30, >= ¥100 get ¥5.

A test acts for one merchant (the ``merchant`` fixture, overridden by :data:`BOTH`) and names it
on every call; :func:`other_than` is the merchant it must not reach.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import pytest

from protos.recharge.v1 import recharge_pb2
from scripts.merchants import DEMO_MERCHANTS, DemoMerchant, open_merchants
from scripts.stack import Stack

DIRECT = next(m for m in DEMO_MERCHANTS if m.direct)
PARTNER = next(m for m in DEMO_MERCHANTS if not m.direct)
MERCHANTS = (DIRECT, PARTNER)

#: Run the test once per WeChat Pay mode (it overrides the ``merchant`` fixture).
BOTH = pytest.mark.parametrize("merchant", MERCHANTS, ids=[m.mode for m in MERCHANTS])


def other_than(merchant: DemoMerchant) -> DemoMerchant:
    return PARTNER if merchant.merchant_id == DIRECT.merchant_id else DIRECT


def configured(*, pos_callback: str = "", order_expiry_seconds: int = 0) -> tuple[DemoMerchant, ...]:
    """The merchants as an e2e stack opens them: POS callbacks to ``pos_callback``, unpaid orders
    expiring after ``order_expiry_seconds`` (0 = the demo's)."""
    return tuple(
        dataclasses.replace(
            m,
            callbacks={recharge_pb2.CHANNEL_POS: pos_callback} if pos_callback else m.callbacks,
            order_expiry_seconds=order_expiry_seconds or m.order_expiry_seconds,
        )
        for m in MERCHANTS
    )


def open_all(stack: Stack, merchants: Sequence[DemoMerchant]) -> list[str]:
    """Open ``merchants`` in the running stack's recharge center and card system."""
    return asyncio.run(
        open_merchants(
            stack.recharge.address, stack.card.address, stack.keys_dir, merchants, stack.client_auth()
        )
    )
