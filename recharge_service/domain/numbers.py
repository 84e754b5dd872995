"""Order, refund and approval numbers. Pure Python.

Order number: ``R`` + yyyymmddHHMMSS (Asia/Shanghai, as WeChat shows times) + 10 random digits —
25 characters of WeChat's allowed out_trade_no set ``[0-9A-Za-z_-|*]``, sortable by creation time.
The refund number is derived from the order number, so every retry sends the same one. An
approval id (four eyes) is ``A`` + the same time and digits.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from rc_common.clock import CHINA


def new_order_no(now: datetime, random_digits: str | None = None) -> str:
    digits = random_digits if random_digits is not None else f"{secrets.randbelow(10**10):010d}"
    return "R" + now.astimezone(CHINA).strftime("%Y%m%d%H%M%S") + digits


def refund_no(order_no: str) -> str:
    """``{order_no}-R1``: the one refund an order can have (WeChat refunds a number at most once)."""
    return f"{order_no}-R1"


def new_approval_id(now: datetime, random_digits: str | None = None) -> str:
    """``A`` + yyyymmddHHMMSS (Asia/Shanghai) + 10 random digits: sortable by when it was asked."""
    digits = random_digits if random_digits is not None else f"{secrets.randbelow(10**10):010d}"
    return "A" + now.astimezone(CHINA).strftime("%Y%m%d%H%M%S") + digits


def money(fen: int) -> str:
    """Fen as an operator reads it: ``123456`` -> ``¥1,234.56``; ``-5`` -> ``-¥0.05``."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"
