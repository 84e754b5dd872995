"""Settles accepted refunds when they are due (the bank's answer), in the background: every
refund due at a step is settled in one commit (``settle_due_refunds``)."""

from __future__ import annotations

from datetime import datetime

from wechat_mock.service_layer.context import Context
from wechat_mock.service_layer.due_loop import DueLoop
from wechat_mock.service_layer.refunds import settle_due_refunds


class RefundSettler:
    def __init__(self, ctx: Context, *, idle_s: float) -> None:
        self._ctx = ctx
        self.loop = DueLoop("refund-settler", self._step, ctx.clock, idle_s=idle_s)

    async def _step(self) -> datetime | None:
        return await settle_due_refunds(self._ctx)

    def start(self) -> None:
        self.loop.start()

    def wake(self) -> None:
        self.loop.wake()

    async def stop(self) -> None:
        await self.loop.stop()
