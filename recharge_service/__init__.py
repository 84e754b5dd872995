"""The recharge center (充值中心): sells stored-value card top-ups paid with WeChat Pay.

Layers: ``domain`` (the order state machine; pure), ``service_layer`` (use cases, ports, unit of
work), ``adapters`` (ORM tables, repositories, gRPC clients of the card system and WeChat Pay,
outbox), ``entrypoints`` (gRPC servicers, scheduler jobs, operator CLI), ``bootstrap``.
"""
