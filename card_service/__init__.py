"""The card system simulator (储值卡系统): an exact stored-value ledger with pre-recharge and void.

Layers: ``domain`` (cards, pre-recharges, journal; pure), ``service_layer`` (use cases, unit of
work), ``adapters`` (ORM tables, repositories), ``entrypoints`` (gRPC servicers), ``bootstrap``.
"""
