"""What the use cases need, gathered once in bootstrap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rc_common.clock import utc_now
from rc_common.faults import FaultEngine
from wechat_mock.domain.merchants import Accounts
from wechat_mock.service_layer.unit_of_work import UnitOfWorkFactory
from wechat_mock.service_layer.wire import WireFormat


@dataclass(frozen=True)
class Context:
    uow: UnitOfWorkFactory
    wire: WireFormat
    faults: FaultEngine
    #: The service provider and the direct-mode merchants (who may ask what).
    accounts: Accounts
    #: Seconds an accepted refund stays PROCESSING before it settles.
    refund_delay_s: float
    clock: Callable[[], datetime] = utc_now
