"""Use cases of template messages: send (idempotent by key) and list."""

from __future__ import annotations

from wechat_mock.domain import ids, validation
from wechat_mock.domain.messages import TemplateMessage
from wechat_mock.service_layer import commands
from wechat_mock.service_layer.context import Context
from wechat_mock.service_layer.unit_of_work import retrying


async def send_template_message(
    cmd: commands.SendTemplateMessage, ctx: Context
) -> tuple[TemplateMessage, bool]:
    """Store the message; the same idempotency key returns the first message (first_delivery False)
    and counts the duplicate, in one statement. Returns ``(message, first_delivery)``."""
    validation.required(cmd.openid, "openid")
    validation.required(cmd.template_id, "template_id")

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


async def list_sent_messages(openid: str, ctx: Context) -> list[TemplateMessage]:
    async with ctx.uow(readonly=True) as uow:
        return await uow.messages.list(openid)
