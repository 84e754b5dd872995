"""What the invariant checker sees of a quiet system, and what it reports: plain data.

An :class:`Observation` is gathered through public RPCs only (``scripts/chaos/observe.py``) or
built by hand in unit tests (``tests/chaos/world.py``). Enum values are their short names
(``CREDITED``, ``SUCCEEDED``, ``SUCCESS``, ``RECHARGE_PRINCIPAL`` ...), so nothing here imports
generated code.

Merchants: every order, pre-recharge, card, trade, refund and bill row carries the merchant it
belongs to, as the system that holds it says — a ``merchant_id`` at the recharge center and the
card system, a WeChat merchant id (``mchid``: a direct merchant's own, a partner merchant's
sub_mchid) at WeChat. :class:`MerchantAccount` ties the two together; the driver's log says which
merchant it meant (the order it created, the card it opened).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MerchantAccount:
    """One merchant of the run and its WeChat Pay account."""

    merchant_id: str
    #: direct (its own mchid and keys) | partner (the provider's sp_mchid + this sub_mchid)
    mode: str
    #: The merchant's own WeChat id: its mchid (direct) or its sub_mchid (partner); the trade bill's
    #: ``mchid`` column either way.
    mchid: str


@dataclass(frozen=True)
class Order:
    order_no: str
    card_no: str
    status: str
    pay_amount_fen: int
    bonus_fen: int = 0
    credit_amount_fen: int = 0
    failure_reason: str = ""
    out_refund_no: str = ""
    transaction_id: str = ""
    idempotency_key: str = ""
    merchant_id: str = ""


@dataclass(frozen=True)
class TimelineEvent:
    seq: int
    kind: str
    from_status: str = "UNSPECIFIED"
    to_status: str = "UNSPECIFIED"
    method: str = ""
    outcome: str = ""
    detail: str = ""
    error: str = ""
    actor: str = ""
    #: The recharge-center replica that wrote the row (its --node-id; "" before replicas were named).
    node: str = ""
    #: When the replica wrote it: seconds since the epoch, by that replica's clock (0 = not known).
    at: float = 0.0
    latency_ms: int = 0


@dataclass(frozen=True)
class PreRecharge:
    order_no: str
    card_no: str
    status: str  # RECHARGING | SUCCEEDED | VOIDED | MISSING (NOT_FOUND at the card system)
    pay_amount_fen: int = 0
    bonus_fen: int = 0
    credit_amount_fen: int = 0
    tombstone: bool = False
    #: The merchant whose card and rule it is ("" only on a tombstone voided without naming one).
    merchant_id: str = ""


@dataclass(frozen=True)
class Card:
    card_no: str
    status: str
    balance_fen: int
    pending_recharge_fen: int = 0
    merchant_id: str = ""


@dataclass(frozen=True)
class JournalEntry:
    entry_id: int
    card_no: str
    kind: str
    amount_fen: int
    balance_after_fen: int
    business_key: str


@dataclass(frozen=True)
class BillRow:
    out_trade_no: str
    trade_state: str  # SUCCESS (a payment) | REFUND (a refund)
    amount_total_fen: int = 0
    out_refund_no: str = ""
    refund_fen: int = 0
    refund_status: str = ""
    transaction_id: str = ""
    trade_time: str = ""
    #: The WeChat merchant id the row is booked under (the bill's ``mchid`` column).
    mchid: str = ""
    #: The merchant (merchant_id) whose bill the row was downloaded as.
    bill_of: str = ""


@dataclass(frozen=True)
class Trade:
    """WeChat's QueryOrder; state NOT_FOUND when WeChat never saw the order."""

    out_trade_no: str
    trade_state: str
    amount_total_fen: int = 0
    refunded_fen: int = 0
    #: Whose trade WeChat says it is: the direct mchid, or the sub_mchid in partner mode.
    mchid: str = ""


@dataclass(frozen=True)
class Refund:
    """WeChat's QueryRefund (or a refund row of a trade bill)."""

    out_refund_no: str
    out_trade_no: str
    status: str
    refund_fen: int
    #: Whose refund WeChat says it is: the direct mchid, or the sub_mchid in partner mode.
    mchid: str = ""


@dataclass(frozen=True)
class Spend:
    request_id: str
    card_no: str
    amount_fen: int
    outcome: str  # done | refused | unknown
    merchant_id: str = ""


@dataclass(frozen=True)
class CrossRead:
    """One read of a merchant's order or card made as *another* merchant, and its answer."""

    #: e.g. ``RechargeCenter.GetRechargeOrder``
    call: str
    #: The order or card number read.
    subject: str
    #: The merchant it belongs to.
    owner: str
    #: The merchant the read was made as.
    reader: str
    #: NOT_FOUND (the only right answer), FOUND, or the status code that came back.
    answer: str


@dataclass
class DriverLog:
    """What the chaos driver did and saw; ``created`` maps idempotency key -> order number."""

    created: dict[str, str] = field(default_factory=dict)
    payments: dict[str, str] = field(default_factory=dict)  # order_no -> done | refused | unknown
    spends: list[Spend] = field(default_factory=list)
    #: order_no -> the merchant the driver created it as.
    merchants: dict[str, str] = field(default_factory=dict)
    #: card_no -> the merchant the driver opened it for.
    card_merchants: dict[str, str] = field(default_factory=dict)


@dataclass
class Observation:
    orders: list[Order] = field(default_factory=list)
    timelines: dict[str, list[TimelineEvent]] = field(default_factory=dict)
    pre_recharges: dict[str, PreRecharge] = field(default_factory=dict)
    cards: dict[str, Card] = field(default_factory=dict)
    journals: dict[str, list[JournalEntry]] = field(default_factory=dict)
    bill_rows: list[BillRow] = field(default_factory=list)
    trades: dict[str, Trade] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    driver: DriverLog = field(default_factory=DriverLog)
    #: The run's merchants, by merchant_id.
    merchants: dict[str, MerchantAccount] = field(default_factory=dict)
    #: merchant_id -> the order numbers ListRechargeOrders returned when asked as that merchant.
    listings: dict[str, list[str]] = field(default_factory=dict)
    #: merchant_id -> the order numbers ListAnomalies returned when asked as that merchant.
    anomaly_listings: dict[str, list[str]] = field(default_factory=dict)
    #: Reads of a sample of orders and cards made as other merchants.
    cross_reads: list[CrossRead] = field(default_factory=list)
    #: node id -> when the crash monkey killed that replica (seconds since the epoch, the same
    #: clock as ``TimelineEvent.at``): a call it had sent unanswered ended there at the latest.
    kills: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str  # order number, card number, merchant id, or "*" for totals
    message: str

    def __str__(self) -> str:
        return f"{self.invariant} {self.subject}: {self.message}"
