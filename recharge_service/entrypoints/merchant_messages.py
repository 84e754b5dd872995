"""``recharge.v1`` merchant messages <-> ``MerchantConfig`` (for ``RechargeOps``' merchant RPCs).

Reading a request only translates (enum values, the expiry's 0 = the default); what makes a
configuration valid is ``MerchantConfig.checked`` alone. Errors name the request field at fault,
as ``checked`` does (``merchant.<field>``).
"""

from __future__ import annotations

from datetime import timedelta

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from protos.recharge.v1 import recharge_pb2
from rc_common.errors import InvalidArgument
from rc_common.grpc_status import ERROR_DOMAIN
from rc_common.timestamps import to_timestamp
from recharge_service.adapters.merchants import config_to_json
from recharge_service.domain.merchant import MerchantConfig, WechatAccount, WechatMode
from recharge_service.domain.order import Channel
from recharge_service.service_layer.merchants import MerchantChange, StaleMerchant

#: The payment window of a merchant whose request leaves ``order_expiry_seconds`` at 0: the
#: domain's default (``MerchantConfig.order_expiry``), named here so it is written once.
DEFAULT_ORDER_EXPIRY = MerchantConfig(merchant_id="", display_name="", channels=frozenset()).order_expiry

_MODES = {
    recharge_pb2.WECHAT_MODE_PARTNER: WechatMode.PARTNER,
    recharge_pb2.WECHAT_MODE_DIRECT: WechatMode.DIRECT,
}
_MODE_VALUES = {mode: value for value, mode in _MODES.items()}


def _channel(value: int, field_name: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise InvalidArgument(field_name, f"unknown channel {value}") from None


def merchant_from_proto(
    message: recharge_pb2.Merchant, default_expiry: timedelta = DEFAULT_ORDER_EXPIRY
) -> MerchantConfig:
    """The configuration a ``PutMerchant`` asks for (not yet checked; ``version`` and
    ``updated_at`` are the server's and ignored). InvalidArgument for an unknown enum value or a
    channel given twice in ``callbacks``."""
    channels = frozenset(_channel(value, "merchant.channels") for value in message.channels)
    callbacks: dict[Channel, str] = {}
    for callback in message.callbacks:
        channel = _channel(callback.channel, "merchant.callbacks")
        if channel in callbacks:
            raise InvalidArgument("merchant.callbacks", f"{channel.name} given twice")
        if callback.target:  # empty = not called back
            callbacks[channel] = callback.target
    mode = _MODES.get(message.wechat.mode)
    if mode is None:
        raise InvalidArgument("merchant.wechat.mode", "required: PARTNER or DIRECT")
    seconds = message.order_expiry_seconds
    return MerchantConfig(
        merchant_id=message.merchant_id,
        display_name=message.display_name,
        channels=channels,
        callbacks=callbacks,
        order_expiry=timedelta(seconds=seconds) if seconds else default_expiry,
        wechat=WechatAccount(mode, message.wechat.mchid, message.wechat.appid, message.wechat.keys_dir),
        max_open_orders=message.max_open_orders,
        max_create_rate=message.max_create_rate,
        disabled=message.disabled,
    )


def merchant_to_proto(config: MerchantConfig) -> recharge_pb2.Merchant:
    return recharge_pb2.Merchant(
        merchant_id=config.merchant_id,
        display_name=config.display_name,
        channels=sorted(int(c) for c in config.channels),  # type: ignore[misc]  # same numbers as recharge.v1.Channel
        callbacks=[
            recharge_pb2.CallbackTarget(channel=int(channel), target=target)  # type: ignore[arg-type]
            for channel, target in sorted(config.callbacks.items())
        ],
        order_expiry_seconds=int(config.order_expiry.total_seconds()),
        wechat=recharge_pb2.WechatPayConfig(
            mode=_MODE_VALUES[config.wechat.mode],
            mchid=config.wechat.mchid,
            appid=config.wechat.appid,
            keys_dir=config.wechat.keys_dir,
        ),
        max_open_orders=config.max_open_orders,
        max_create_rate=config.max_create_rate,
        disabled=config.disabled,
        version=config.version,
        updated_at=to_timestamp(config.updated_at),
    )


def change_to_proto(change: MerchantChange) -> recharge_pb2.MerchantChange:
    return recharge_pb2.MerchantChange(
        version=change.config.version,
        at=to_timestamp(change.at),
        operator=change.operator,
        reason=change.reason,
        config_json=config_to_json(change.config),
    )


def stale_status(exc: StaleMerchant) -> grpc.Status:
    """ABORTED (the contract of ``PutMerchant``: another change came first, read and retry) with
    the ErrorInfo ``MERCHANT_VERSION_CHANGED`` and the merchant's current version."""
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.ErrorInfo(
            reason=exc.reason,
            domain=ERROR_DOMAIN,
            metadata={**exc.metadata, "current_version": str(exc.current)},
        )
    )
    status = status_pb2.Status(code=code_pb2.ABORTED, message=exc.message, details=[detail])
    return rpc_status.to_status(status)
