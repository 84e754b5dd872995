"""The operators' web console (``python -m recharge_service.console``): server-rendered pages over
the recharge center's RechargeOps, for operators and finance staff rather than engineers.

    settings.py      flags and environment (every duration a setting)
    accounts.py      the accounts file: subjects, roles, scrypt hashes; operators_cli.py edits it
    sessions.py      server-side sessions (idle timeout, absolute lifetime, a CSRF token each)
    throttle.py      login throttling per account and peer
    csrf.py          what every POST must show
    backend.py       the gRPC calls, each with a token minted for the logged-in operator
    web.py           the aiohttp app: middlewares (session, CSRF, security headers), rendering
    pages/           one module per screen: login, anomalies, orders, approvals, reconciliation, health
    i18n.py          every label and word, in Chinese and English
    formatting.py    ¥1,234.56 from fen, times in +08:00
    server.py        the composition root: build, bind (HTTPS with --tls-dir), serve
    templates/, static/   Jinja2 templates (autoescaped) and one stylesheet; no script
"""
