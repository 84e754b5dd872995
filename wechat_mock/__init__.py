"""The WeChat Pay simulator: APIv3 payment, refund and bill semantics, signed and encrypted
notifications on WeChat's retry schedule, template messages, and FaultControl.

Many merchants, as a SaaS provider uses WeChat Pay: every PaymentGateway request names its
merchant (``MerchantRef``): partner mode (服务商: our ``--mchid`` as sp_mchid, with the merchant's
sub_mchid; the provider's keys) or direct mode (a ``--direct-merchants`` mchid, with that
merchant's own keys in ``<keys-dir>/platform/direct/<mchid>/``). A merchant finds only its own
trades, and holds only its bundle (``<keys-dir>/merchant/``…): never WeChat's private key.

Layers: ``domain`` (payments, refunds, notifications; pure), ``service_layer`` (use cases, ports
and the unit of work they use, notifier, refund settler; no adapter, no SQLAlchemy), ``adapters``
(keys, tables, repositories, SQL unit of work, notification client; the crypto itself is
``rc_common.wechatpay_crypto``, shared with the recharge center),
``entrypoints`` (gRPC servicers; the APIv3 HTTP facade), ``bootstrap`` (wiring).
"""
