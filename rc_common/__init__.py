"""Code shared by the three servers — and nothing else.

- ``settings``: frozen settings dataclasses built from flags and environment variables.
- ``server``: the one gRPC server factory (health, reflection, graceful stop on signals).
- ``logs``: structlog configuration and the request-context interceptor.
- ``errors`` / ``grpc_status``: the error tree and its single mapping to gRPC status codes.
- ``outcomes``: how a caller reads a remote call's end: done, refused, or unknown.
- ``db``: SQLAlchemy async engines (SQLite WAL + synchronous=FULL + BEGIN IMMEDIATE, or PostgreSQL).
- ``faults``: the fault engine of the simulators (rules, seeded decisions, interceptor, FaultControl).
"""
