"""Merchants for a running stack: the demo's two (`make run`), the chaos run's three, the bench's two.

A merchant is opened in two places, both idempotently (safe on every start):

* the recharge center (``RechargeOps.PutMerchant``): display name, channels, WeChat account and
  limits — created at version 1 when missing, left as it is when already there (an operator may
  have changed it since);
* the card system (``CardAdmin``): the merchant's bonus rule (set when the merchant has none yet)
  and its demo cards.

A direct-mode merchant needs its own WeChat Pay keys: the simulator creates them when started
with ``--direct-merchants`` (see :func:`direct_merchants_flag`), and the recharge center reads
that merchant's bundle, ``<keys-dir>/merchant/direct/<mchid>/`` (the merchant's
``wechat.keys_dir``), never the simulator's private ``<keys-dir>/platform/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from protos.card.v1 import card_pb2, card_pb2_grpc
from protos.recharge.v1 import recharge_pb2, recharge_pb2_grpc
from protos.wechatpay.v1 import wechatpay_pb2
from rc_common.channels import ClientAuth, aio_channel
from wechat_mock.adapters.keys import PlatformKeys, load_keys, merchant_bundle_dir

#: The service provider's WeChat Pay merchant id (sp_mchid) and app id (sp_appid): the default of
#: both the recharge center's ``--wechat-mchid`` and the simulator's ``--mchid``/``--appid``.
PROVIDER_MCHID = "1900000109"
PROVIDER_APPID = "wxd678efh567hg6787"

ALL_CHANNELS = (
    recharge_pb2.CHANNEL_OFFICIAL_ACCOUNT,
    recharge_pb2.CHANNEL_POS,
    recharge_pb2.CHANNEL_THIRD_PARTY,
)


@dataclass(frozen=True)
class DemoMerchant:
    merchant_id: str
    display_name: str
    #: "partner" (the provider's sp_mchid + this sub_mchid) or "direct" (own mchid and keys).
    mode: str
    mchid: str
    appid: str
    #: Bonus tiers, (min pay, bonus) in fen.
    rule: tuple[tuple[int, int], ...]
    #: (card_no, holder name) — card numbers are unique across merchants.
    cards: tuple[tuple[str, str], ...]
    order_expiry_seconds: int = 1800
    max_open_orders: int = 0
    max_create_rate: int = 0
    channels: tuple[recharge_pb2.Channel.ValueType, ...] = ALL_CHANNELS
    #: channel -> host:port of its RechargeCallbacks.
    callbacks: dict[recharge_pb2.Channel.ValueType, str] = field(default_factory=dict, hash=False)

    @property
    def direct(self) -> bool:
        return self.mode == "direct"

    @property
    def first_card(self) -> str:
        """The card number of the merchant's first demo card ("" when it has none)."""
        return self.cards[0][0] if self.cards else ""

    def wechat_keys_dir(self, keys_dir: Path) -> Path:
        """The merchant bundle the recharge center verifies this merchant's WeChat notifications
        with (``keys_dir``: the simulator's keys directory): its own in direct mode, the
        provider's in partner mode."""
        return merchant_bundle_dir(keys_dir, self.mchid if self.direct else "")

    def wechat_signing_keys(self, keys_dir: Path) -> PlatformKeys:
        """WeChat's keys that sign this merchant's notifications (``keys_dir``: the simulator's
        keys directory): for tests that play WeChat, never for the recharge center."""
        return load_keys(keys_dir, self.mchid if self.direct else "")

    def wechat_ref(self, sp_mchid: str = PROVIDER_MCHID) -> wechatpay_pb2.MerchantRef:
        """Who a WeChat Pay request acts for: this merchant's mchid (direct mode), or the
        provider's ``sp_mchid`` with this merchant as ``sub_mchid`` (partner mode)."""
        if self.direct:
            return wechatpay_pb2.MerchantRef(mchid=self.mchid)
        return wechatpay_pb2.MerchantRef(sp_mchid=sp_mchid, sub_mchid=self.mchid)

    def message(self, keys_dir: Path) -> recharge_pb2.Merchant:
        """The configuration to put (``keys_dir``: the simulator's keys directory)."""
        wechat = recharge_pb2.WechatPayConfig(
            mode=recharge_pb2.WECHAT_MODE_DIRECT if self.direct else recharge_pb2.WECHAT_MODE_PARTNER,
            mchid=self.mchid,
            appid=self.appid,
            keys_dir=str(self.wechat_keys_dir(keys_dir)) if self.direct else "",
        )
        return recharge_pb2.Merchant(
            merchant_id=self.merchant_id,
            display_name=self.display_name,
            channels=list(self.channels),
            callbacks=[
                recharge_pb2.CallbackTarget(channel=channel, target=target)
                for channel, target in sorted(self.callbacks.items())
            ],
            order_expiry_seconds=self.order_expiry_seconds,
            wechat=wechat,
            max_open_orders=self.max_open_orders,
            max_create_rate=self.max_create_rate,
        )


#: `make run`: a tea house paid directly (its own mchid and keys) and a bakery chain under the
#: provider (partner mode), with different bonus rules.
DEMO_MERCHANTS = (
    DemoMerchant(
        merchant_id="teahouse",
        display_name="Tea House (direct)",
        mode="direct",
        mchid="1900000301",
        appid="wx3333333333333333",
        rule=((100_000, 20_000), (50_000, 8_000), (20_000, 2_000)),  # pay >= ¥1000 get ¥200, ...
        cards=(("8800000000000001", "Demo Customer A"), ("8800000000000002", "Demo Customer B")),
    ),
    DemoMerchant(
        merchant_id="bakery",
        display_name="Bakery Chain (partner)",
        mode="partner",
        mchid="1900000401",
        appid="wx4444444444444444",
        rule=((30_000, 3_000), (10_000, 500)),  # pay >= ¥300 get ¥30, pay >= ¥100 get ¥5
        cards=(("8900000000000001", "Demo Customer C"), ("8900000000000002", "Demo Customer D")),
    ),
)


#: The bench (``python -m scripts.bench``): its top-ups alternate between a merchant paid directly
#: and one under the provider, so both WeChat signing paths (the merchant's own keys; the provider's
#: keys with a sub_mchid) are measured. No limits (the bench measures the service, not a merchant's
#: quota) and no demo cards: the bench opens its own, spread over both. The same rule for both, so
#: the two halves of the load do the same work; ¥200 gets the ¥20 tier, so the bonus path counts.
BENCH_MERCHANTS = (
    DemoMerchant(
        merchant_id="bench-direct",
        display_name="Bench (direct)",
        mode="direct",
        mchid="1900000501",
        appid="wx5555555555555555",
        rule=((100_000, 20_000), (50_000, 8_000), (20_000, 2_000)),
        cards=(),
    ),
    DemoMerchant(
        merchant_id="bench-partner",
        display_name="Bench (partner)",
        mode="partner",
        mchid="1900000601",
        appid="wx6666666666666666",
        rule=((100_000, 20_000), (50_000, 8_000), (20_000, 2_000)),
        cards=(),
    ),
)

#: The chaos run (``python -m scripts.chaos``): its top-ups are spread over three merchants, one paid
#: directly and two under the provider, each with its own bonus rule, so a credit, refund or read
#: that crosses merchants shows (scripts/chaos/invariants.py, M1-M4). Payment windows of seconds, so
#: orders the customer walks away from close within a run; no limits (chaos breaks the network, not a
#: merchant's quota) and no demo cards: each run opens its own cards, each card for one merchant.
CHAOS_MERCHANTS = (
    DemoMerchant(
        merchant_id="chaos-tea",
        display_name="Chaos Tea House (direct)",
        mode="direct",
        mchid="1900000701",
        appid="wx7777777777777777",
        rule=((100_000, 20_000), (50_000, 8_000), (20_000, 2_000)),  # pay >= ¥1000 get ¥200, ...
        cards=(),
        order_expiry_seconds=8,
    ),
    DemoMerchant(
        merchant_id="chaos-bakery",
        display_name="Chaos Bakery (partner)",
        mode="partner",
        mchid="1900000801",
        appid="wx8888888888888888",
        rule=((30_000, 3_000), (10_000, 500)),  # pay >= ¥300 get ¥30, pay >= ¥100 get ¥5
        cards=(),
        order_expiry_seconds=8,
    ),
    DemoMerchant(
        merchant_id="chaos-books",
        display_name="Chaos Books (partner)",
        mode="partner",
        mchid="1900000901",
        appid="wx9999999999999999",
        rule=((150_000, 45_000), (5_000, 300)),  # pay >= ¥1500 get ¥450, pay >= ¥50 get ¥3
        cards=(),
        order_expiry_seconds=8,
    ),
)


def demo_merchant(merchant_id: str) -> DemoMerchant | None:
    """The demo merchant called ``merchant_id``, if there is one."""
    return next((m for m in DEMO_MERCHANTS if m.merchant_id == merchant_id), None)


def direct_merchants_flag(merchants: Sequence[DemoMerchant]) -> list[str]:
    """The WeChat simulator's ``--direct-merchants`` argument for ``merchants`` ([] if none)."""
    direct = [f"{m.mchid}:{m.appid}" for m in merchants if m.direct]
    return ["--direct-merchants", ",".join(direct)] if direct else []


def describe_rule(rule: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"pay >= ¥{pay / 100:.0f} get ¥{bonus / 100:.0f}" for pay, bonus in rule)


async def open_merchants(
    recharge_address: str,
    card_address: str,
    keys_dir: Path,
    merchants: Sequence[DemoMerchant],
    auth: ClientAuth,
) -> list[str]:
    """Open ``merchants`` in the recharge center and the card system (idempotent) as the operator
    of ``auth`` (a token with the operator role; e.g. ``stack.client_auth()``); one line of notes
    per merchant and card, for a banner."""
    notes: list[str] = []
    async with (
        aio_channel(recharge_address, auth) as recharge_channel,
        aio_channel(card_address, auth) as card_channel,
    ):
        ops = recharge_pb2_grpc.RechargeOpsStub(recharge_channel)
        admin = card_pb2_grpc.CardAdminStub(card_channel)
        for merchant in merchants:
            version = await _put_when_missing(ops, merchant, keys_dir)
            rule = await admin.GetRechargeRule(
                card_pb2.GetRechargeRuleRequest(merchant_id=merchant.merchant_id), timeout=5
            )
            if not rule.tiers:
                rule = await admin.SetRechargeRule(
                    card_pb2.SetRechargeRuleRequest(
                        merchant_id=merchant.merchant_id,
                        tiers=[card_pb2.BonusTier(min_pay_fen=p, bonus_fen=b) for p, b in merchant.rule],
                    ),
                    timeout=5,
                )
            rule_text = describe_rule([(t.min_pay_fen, t.bonus_fen) for t in rule.tiers])
            notes.append(
                f"merchant {merchant.merchant_id} v{version} ({merchant.mode} mode, mchid "
                f"{merchant.mchid}): bonus rule v{rule.version}: {rule_text}"
            )
            for card_no, holder in merchant.cards:
                try:
                    await admin.OpenCard(
                        card_pb2.OpenCardRequest(
                            card_no=card_no, holder_name=holder, merchant_id=merchant.merchant_id
                        ),
                        timeout=5,
                    )
                except grpc.aio.AioRpcError as error:
                    if error.code() not in (
                        grpc.StatusCode.ALREADY_EXISTS,
                        grpc.StatusCode.FAILED_PRECONDITION,
                    ):
                        raise
                notes.append(f"  card {card_no} ({holder})")
    return notes


async def _put_when_missing(
    ops: recharge_pb2_grpc.RechargeOpsStub, merchant: DemoMerchant, keys_dir: Path
) -> int:
    try:
        got = await ops.GetMerchant(
            recharge_pb2.GetMerchantRequest(merchant_id=merchant.merchant_id), timeout=5
        )
        return int(got.merchant.version)
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
    try:
        created = await ops.PutMerchant(
            recharge_pb2.PutMerchantRequest(
                merchant=merchant.message(keys_dir),
                expected_version=0,
                reason="opened by the demo set-up",
            ),
            timeout=5,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.ABORTED:  # opened by someone else meanwhile
            raise
        return 1
    return int(created.version)
