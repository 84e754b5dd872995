"""The card system simulator (储值卡系统): an exact stored-value ledger with pre-recharge and void.

Many merchants share it: every card belongs to one merchant (card numbers stay global), each
merchant has its own versioned bonus rule, and a request naming a merchant sees only that
merchant's cards and pre-recharges.

Layers: ``domain`` (cards, pre-recharges, journal; pure), ``service_layer`` (use cases, unit of
work), ``adapters`` (ORM tables, repositories), ``entrypoints`` (gRPC servicers), ``bootstrap``.
"""
