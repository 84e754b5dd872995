"""The WeChat Pay simulator: APIv3 payment, refund and bill semantics, signed and encrypted
notifications on WeChat's retry schedule, template messages, and FaultControl.

Layers: ``domain`` (payments, refunds; pure), ``service_layer`` (use cases, unit of work, notifier),
``adapters`` (ORM tables, crypto, notification client), ``entrypoints`` (gRPC servicers), ``bootstrap``.
"""
