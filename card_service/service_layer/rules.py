"""Use cases of recharge rules: set a merchant's new version, read a merchant's current one."""

from __future__ import annotations

from dataclasses import replace

from card_service.domain.commands import SetRechargeRule, required_merchant
from card_service.domain.rules import RechargeRule
from card_service.service_layer.context import CardContext
from card_service.service_layer.locks import rule_key
from card_service.service_layer.ports import UnitOfWork
from rc_common.logs import get_logger

log = get_logger("card.rules")


async def set_recharge_rule(ctx: CardContext, cmd: SetRechargeRule) -> RechargeRule:
    """Stores the merchant's next version; pre-recharges already recorded keep their bonus, and
    other merchants' rules do not move."""
    async with ctx.locks.hold(rule_key(cmd.merchant_id)), ctx.uow(False) as uow:
        # Fresh, not the cached one.
        current = await uow.rules.current(cmd.merchant_id) or RechargeRule(cmd.merchant_id, 0)
        rule = current.next_version(cmd.tiers, cmd.limits, ctx.clock())
        uow.rules.add(rule)
        await uow.commit()
    ctx.rules.remember(cmd.merchant_id, rule)
    log.info("recharge_rule_set", merchant_id=cmd.merchant_id, version=rule.version, tiers=len(rule.tiers))
    return _filled(ctx, rule)


async def get_recharge_rule(ctx: CardContext, merchant_id: str) -> RechargeRule:
    """The merchant's rule in force (version 0, no tiers, before it set any) with default limits
    filled in."""
    required_merchant(merchant_id)
    async with ctx.uow(True) as uow:
        rule = await current_rule(ctx, uow, merchant_id)
    return _filled(ctx, rule)


async def current_rule(ctx: CardContext, uow: UnitOfWork, merchant_id: str) -> RechargeRule:
    """The merchant's rule in force; read once, then kept in memory (only this process changes
    it, and every change replaces the cached one)."""
    cached = ctx.rules.get(merchant_id)
    if cached is not None:
        return cached
    stored = await uow.rules.current(merchant_id) or RechargeRule(merchant_id, 0)
    cached = ctx.rules.get(merchant_id)  # a change may have been cached while we read
    if cached is not None and cached.version >= stored.version:
        return cached
    ctx.rules.remember(merchant_id, stored)
    return stored


def _filled(ctx: CardContext, rule: RechargeRule) -> RechargeRule:
    return replace(rule, limits=rule.limits.filled(ctx.defaults))
