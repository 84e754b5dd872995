"""What the use cases need, in one place (built by ``bootstrap``, or by tests with fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rc_common.clock import utc_now
from recharge_service.service_layer.background import BackgroundTasks
from recharge_service.service_layer.limits import CreateRates, OpenOrderCaps
from recharge_service.service_layer.merchants import MerchantDirectory
from recharge_service.service_layer.ports import CardSystem, PaymentGateway
from recharge_service.service_layer.unit_of_work import UowFactory
from recharge_service.settings import SentinelSettings


@dataclass
class Deps:
    uow: UowFactory
    card: CardSystem
    payments: PaymentGateway
    merchants: MerchantDirectory
    #: The provider's WeChat Pay sp_mchid (partner-mode merchants' notifications must carry it).
    sp_mchid: str = "1900000109"
    clock: Callable[[], datetime] = utc_now
    background: BackgroundTasks = field(default_factory=BackgroundTasks)
    #: Each merchant's ``max_create_rate`` bucket (per process).
    create_rates: CreateRates = field(default_factory=CreateRates)
    #: This replica's name (``--node-id``): lease owners are ``<node>/<role>``.
    node: str = "local"
    #: How long a lease on an order lasts before it is renewed (``--lease``).
    lease: timedelta = field(default_factory=lambda: timedelta(seconds=SentinelSettings().lease))
    #: Caps on unpaid orders per card and per payer (``--max-open-orders-per-card``/``-payer``;
    #: none unless the composition root sets them).
    caps: OpenOrderCaps = field(default_factory=lambda: OpenOrderCaps(0, 0))
    #: How long a CREATED order left by its request waits for a retry before it is closed and its
    #: pre-recharge voided (``--void-delay``).
    void_delay: timedelta = field(default_factory=lambda: timedelta(seconds=SentinelSettings().void_delay))
