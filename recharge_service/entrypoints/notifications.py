"""``wechatpay.v1.PaymentNotifications``: WeChat's notification, answered SUCCESS or FAIL.

A FAIL is an answer, not a gRPC error: WeChat retries on FAIL exactly as on an HTTP error.
"""

from __future__ import annotations

import grpc

from protos.wechatpay.v1 import wechatpay_pb2, wechatpay_pb2_grpc
from rc_common.errors import InvalidArgument
from rc_common.logs import get_logger
from rc_common.server import Registrar
from rc_common.validation import check_request
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.notifications import (
    FAIL,
    Ack,
    NotificationOpener,
    handle_notification,
)

log = get_logger("notify")


class PaymentNotificationsServicer(wechatpay_pb2_grpc.PaymentNotificationsServicer):
    def __init__(self, deps: Deps, opener: NotificationOpener) -> None:
        self._deps = deps
        self._opener = opener

    async def Notify(
        self, request: wechatpay_pb2.NotifyRequest, context: grpc.aio.ServicerContext
    ) -> wechatpay_pb2.NotifyAck:
        try:
            check_request(request)
            ack = await handle_notification(
                self._deps, self._opener, dict(request.headers), bytes(request.body)
            )
        except InvalidArgument as exc:
            ack = Ack(FAIL, exc.message)
        except Exception:  # last resort: WeChat must read SUCCESS or FAIL, never a gRPC error
            log.exception("notification_failed")
            ack = Ack(FAIL, "could not handle the notification; retry later")
        return wechatpay_pb2.NotifyAck(code=ack.code, message=ack.message)


def registrar(deps: Deps, opener: NotificationOpener) -> Registrar:
    def register(server: grpc.aio.Server) -> str:
        wechatpay_pb2_grpc.add_PaymentNotificationsServicer_to_server(
            PaymentNotificationsServicer(deps, opener), server
        )
        return str(wechatpay_pb2.DESCRIPTOR.services_by_name["PaymentNotifications"].full_name)

    return register
