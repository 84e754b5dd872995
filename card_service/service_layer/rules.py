"""Use cases of recharge rules: set a new version, read the current one."""

from __future__ import annotations

from dataclasses import replace

from card_service.domain.commands import SetRechargeRule
from card_service.domain.rules import RechargeRule
from card_service.service_layer.context import CardContext
from card_service.service_layer.locks import RULE_KEY
from card_service.service_layer.ports import UnitOfWork
from rc_common.logs import get_logger

log = get_logger("card.rules")


async def set_recharge_rule(ctx: CardContext, cmd: SetRechargeRule) -> RechargeRule:
    """Stores the next version; pre-recharges already recorded keep the bonus they were given."""
    async with ctx.locks.hold(RULE_KEY), ctx.uow(False) as uow:
        current = await uow.rules.current() or RechargeRule(0)  # fresh, not the cached one
        rule = current.next_version(cmd.tiers, cmd.limits, ctx.clock())
        uow.rules.add(rule)
        await uow.commit()
    ctx.rule = rule
    log.info("recharge_rule_set", version=rule.version, tiers=len(rule.tiers))
    return _filled(ctx, rule)


async def get_recharge_rule(ctx: CardContext) -> RechargeRule:
    """The rule in force (version 0, no tiers, before any was set) with default limits filled in."""
    async with ctx.uow(True) as uow:
        rule = await current_rule(ctx, uow)
    return _filled(ctx, rule)


async def current_rule(ctx: CardContext, uow: UnitOfWork) -> RechargeRule:
    """The rule in force; read once, then kept in memory (only this process changes it)."""
    if ctx.rule is None:
        ctx.rule = await uow.rules.current() or RechargeRule(0)
    return ctx.rule


def _filled(ctx: CardContext, rule: RechargeRule) -> RechargeRule:
    return replace(rule, limits=rule.limits.filled(ctx.defaults))
