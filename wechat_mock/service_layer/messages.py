"""Use cases of template messages: send (idempotent by key) and list."""

from __future__ import annotations

from datetime import datetime

from rc_common import page_tokens
from rc_common.errors import InvalidArgument
from rc_common.validation import page_size as bounded_page_size
from rc_common.validation import text
from wechat_mock.domain import ids
from wechat_mock.domain.messages import TemplateMessage
from wechat_mock.service_layer import commands
from wechat_mock.service_layer.context import Context
from wechat_mock.service_layer.unit_of_work import retrying

DEFAULT_PAGE_SIZE = 100
MAX_DATA_ITEMS = 32


async def send_template_message(
    cmd: commands.SendTemplateMessage, ctx: Context
) -> tuple[TemplateMessage, bool]:
    """Store the message; the same idempotency key returns the first message (first_delivery False)
    and counts the duplicate, in one statement. Returns ``(message, first_delivery)``."""
    text("openid", cmd.openid, maximum=128, required=True)
    text("template_id", cmd.template_id, maximum=128, required=True)
    text("idempotency_key", cmd.idempotency_key, maximum=256)
    if len(cmd.data) > MAX_DATA_ITEMS:
        raise InvalidArgument("data", f"at most {MAX_DATA_ITEMS} items")
    for name, value in cmd.data.items():
        text("data", name, maximum=64)
        text(f"data[{name}]", value, maximum=1024)

    async def attempt() -> tuple[TemplateMessage, bool]:
        message = TemplateMessage(
            msgid=ids.msgid(),
            openid=cmd.openid,
            template_id=cmd.template_id,
            data=dict(cmd.data),
            idempotency_key=cmd.idempotency_key,
            sent_at=ctx.clock(),
        )
        async with ctx.uow() as uow:
            sent = uow.messages.send(message)
            await uow.commit()
        return sent.value, sent.value.msgid == message.msgid

    return await retrying(attempt)


async def list_sent_messages(
    openid: str, ctx: Context, page_size: int = 0, page_token: str = ""
) -> tuple[list[TemplateMessage], str]:
    """One page of sent messages, oldest first, and the token of the next ('' on the last)."""
    text("openid", openid, maximum=128)
    limit = bounded_page_size("page_size", page_size, DEFAULT_PAGE_SIZE)
    after = _read_token(page_token) if page_token else None
    async with ctx.uow(readonly=True) as uow:
        found = await uow.messages.list(openid, after, limit + 1)
    page = found[:limit]
    more = len(found) > limit
    token = page_tokens.make("sent", [page[-1].sent_at.isoformat(), page[-1].msgid]) if more else ""
    return page, token


def _read_token(token: str) -> tuple[datetime, str]:
    try:
        moment, msgid = page_tokens.read("sent", token, 2)
        at = datetime.fromisoformat(moment)
    except ValueError:
        raise InvalidArgument("page_token", "not a token from a previous page") from None
    if at.tzinfo is None:
        raise InvalidArgument("page_token", "not a token from a previous page")
    return at, msgid
