"""Template messages (official account notices) the merchant sends its customers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class TemplateMessage:
    msgid: str
    openid: str
    template_id: str
    data: dict[str, str]
    idempotency_key: str
    sent_at: datetime
    send_count: int = 1
    version: int = field(default=0, compare=False)

    def resend(self) -> None:
        """The same idempotency key again: the customer sees one message; count the duplicate."""
        self.send_count += 1
