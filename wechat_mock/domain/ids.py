"""WeChat-shaped identifiers. Pure: the caller passes the time and a random source."""

from __future__ import annotations

import random
import string
import uuid
from datetime import datetime

from rc_common.clock import CHINA

_system = random.SystemRandom()


def _digits(count: int, rng: random.Random) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def prepay_id(now: datetime, rng: random.Random = _system) -> str:
    """``wx`` + yyyyMMddHHmmss + 20 hex characters (36 in all), like WeChat's prepay ids."""
    stamp = now.astimezone(CHINA).strftime("%Y%m%d%H%M%S")
    return "wx" + stamp + "".join(rng.choice("0123456789abcdef") for _ in range(20))


def transaction_id(now: datetime, rng: random.Random = _system) -> str:
    """28 digits: ``4200`` + yyyyMMdd + 16 digits (WeChat: 4200000985202103031441826014)."""
    return "4200" + now.astimezone(CHINA).strftime("%Y%m%d") + _digits(16, rng)


def refund_id(now: datetime, rng: random.Random = _system) -> str:
    """29 digits: ``50`` + ``000`` + yyyyMMdd + 16 digits (WeChat: 50000000382019052709732678859)."""
    return "50" + "000" + now.astimezone(CHINA).strftime("%Y%m%d") + _digits(16, rng)


def msgid(rng: random.Random = _system) -> str:
    """A template message id: WeChat's are decimal int64s."""
    return str(rng.randrange(10**15, 10**18))


def notification_id() -> str:
    """A notification's ``id`` (a UUID, as WeChat sends; retries keep it)."""
    return str(uuid.uuid4())
