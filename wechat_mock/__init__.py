"""The WeChat Pay simulator: APIv3 payment, refund and bill semantics, signed and encrypted
notifications on WeChat's retry schedule, template messages, and FaultControl.

Layers: ``domain`` (payments, refunds, notifications; pure), ``service_layer`` (use cases, ports
and the unit of work they use, notifier, refund settler; no adapter, no SQLAlchemy), ``adapters``
(keys, tables, repositories, SQL unit of work, notification client; the crypto itself is
``rc_common.wechatpay_crypto``, shared with the recharge center),
``entrypoints`` (gRPC servicers), ``bootstrap`` (wiring).
"""
