"""The card system's domain: cards, pre-recharges, consumptions, the journal and recharge rules.

Pure Python: no SQLAlchemy, gRPC or generated code. Business refusals are ``rc_common.errors``.
"""
