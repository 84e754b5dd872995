"""The console's aiohttp application: who is asking, what every request must show, and rendering.

Every request passes two middlewares before its page:

1. ``visit``: the language (``?lang=``, its cookie, the browser's), the session from the session
   cookie and the operator it belongs to — read from the accounts file as it is now, so a removed
   operator's session ends and changed roles apply at once. It adds the security headers
   (a strict Content-Security-Policy: no inline script or style, nothing from elsewhere; no
   framing; no caching of pages).
2. ``guard``: every page but the login page and the stylesheet needs a session (a GET is sent to
   the login page, anything else refused); every POST must pass ``csrf.refusal`` — else 403 and
   nothing is done.

A page then checks the operator's role for what it does (``require_role``); the recharge center
checks again with the token the console mints (``backend``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from protos.recharge.v1 import recharge_pb2
from rc_common.auth import APPROVER
from rc_common.logs import get_logger
from rc_common.policy import WRITERS
from recharge_service.console import csrf, formatting
from recharge_service.console.accounts import AccountBook
from recharge_service.console.backend import Backend, CallFailed, Calls, Operator
from recharge_service.console.i18n import LANGUAGES, Translator, pick_language
from recharge_service.console.sessions import Session, SessionStore
from recharge_service.console.settings import ConsoleSettings
from recharge_service.console.throttle import LoginThrottle

log = get_logger("console")

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "__Host-rc_session"
LOGIN_COOKIE = "__Host-rc_login"
LANG_COOKIE = "rc_lang"
#: Paths served without a session.
PUBLIC_PREFIXES = ("/login", "/static/", "/favicon.ico")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class Console:
    """What every page shares (one per process, built by ``server.build_console``)."""

    settings: ConsoleSettings
    accounts: AccountBook
    sessions: SessionStore
    throttle: LoginThrottle
    backend: Backend
    templates: jinja2.Environment
    #: Cookies carry Secure (browsers keep them on https:// and on http://localhost / 127.0.0.1).
    secure_cookies: bool = True


CONSOLE = web.AppKey("console", Console)


@dataclass
class Visit:
    """Who asks and in which language (``request[VISIT]``)."""

    lang: str
    t: Translator
    session: Session | None = None
    operator: Operator | None = None


VISIT = web.RequestKey("rc_console_visit", Visit)


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE]


def visit_of(request: web.Request) -> Visit:
    return request[VISIT]


def operator_of(request: web.Request) -> Operator:
    operator = visit_of(request).operator
    if operator is None:  # the guard lets no request without one reach a page that asks
        raise web.HTTPFound("/login")
    return operator


def status_name(value: int) -> str:
    """``ORDER_STATUS_CREDITED`` (its number) -> ``CREDITED``."""
    return formatting.enum_key(recharge_pb2.OrderStatus.Name(value), "ORDER_STATUS_")  # type: ignore[arg-type]


def action_name(value: int) -> str:
    """``RESOLVE_ACTION_REFUND`` (its number) -> ``REFUND``."""
    return formatting.enum_key(recharge_pb2.ResolveAction.Name(value), "RESOLVE_ACTION_")  # type: ignore[arg-type]


def order_url(order_no: str, merchant_id: str = "") -> str:
    """The order's page (with its merchant when known: the recharge center checks it)."""
    tail = "?" + urlencode({"merchant": merchant_id}) if merchant_id else ""
    return f"/orders/{quote(order_no, safe='')}{tail}"


def calls_of(request: web.Request) -> Calls:
    return console_of(request).backend.calls(operator_of(request))


def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = formatting.money
    env.filters["when"] = formatting.when
    env.filters["when_ms"] = lambda stamp: formatting.when(stamp, millis=True)
    env.filters["age"] = formatting.age
    env.filters["latency"] = formatting.latency
    return env


def expected_origin(request: web.Request) -> str:
    configured = console_of(request).settings.origin
    return configured or f"{request.scheme}://{request.host}"


def set_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=console_of(request).secure_cookies,
        samesite="Strict",
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, name: str) -> None:
    set_cookie(response, request, name, "", 0)


def _security_headers(response: web.StreamResponse, request: web.Request) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
    if request.scheme == "https":
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


@web.middleware
async def visit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = console_of(request)
    asked = request.query.get("lang")
    lang = pick_language(asked, request.cookies.get(LANG_COOKIE), request.headers.get("Accept-Language"))
    visit = Visit(lang, Translator(lang))
    session_id = request.cookies.get(SESSION_COOKIE, "")
    session = console.sessions.get(session_id) if session_id else None
    if session is not None:
        account = console.accounts.get(session.subject)
        if account is None:  # removed since the login
            console.sessions.end(session.session_id)
            log.info("session_ended", subject=session.subject, why="account_removed")
        else:
            visit.session, visit.operator = session, Operator(account.subject, account.roles)
    request[VISIT] = visit
    try:
        response = await handler(request)
    except web.HTTPNotFound:
        t = visit.t
        response = render(
            request, "error.html", http_status=404, title=t("not_found_title"), message="not_found"
        )
    except web.HTTPException as exc:
        _security_headers(exc, request)
        raise
    except Exception:  # a bug: the operator reads a plain page, the log has the traceback
        log.exception("page_failed", path=request.path)
        response = render(request, "error.html", http_status=500, title="500", message="internal_error")
    if asked in LANGUAGES:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 24 * 3600, path="/", samesite="Strict")
    _security_headers(response, request)
    return response


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    visit = visit_of(request)
    public = request.path.startswith(PUBLIC_PREFIXES)
    if not public and visit.operator is None:
        if request.method in ("GET", "HEAD"):
            target = request.path_qs if request.path != "/" else "/anomalies"
            raise web.HTTPSeeOther("/login?" + urlencode({"next": target}))
        log.info("post_refused", path=request.path, why="no_session", peer=request.remote)
        return forbidden(request, "csrf_refused")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if request.path == "/login":
            wanted = request.cookies.get(LOGIN_COOKIE, "")
        else:
            wanted = visit.session.csrf_token if visit.session is not None else ""
        form = await request.post()
        sent = form.get(csrf.FIELD)
        why = csrf.refusal(
            expected_origin=expected_origin(request),
            origin=request.headers.get("Origin"),
            referer=request.headers.get("Referer"),
            sent=sent if isinstance(sent, str) else "",
            wanted=wanted,
        )
        if why:
            subject = visit.operator.subject if visit.operator else ""
            log.warning("post_refused", path=request.path, why=why, subject=subject, peer=request.remote)
            return forbidden(request, "csrf_refused")
    return await handler(request)


def render(request: web.Request, template: str, *, http_status: int = 200, **context: Any) -> web.Response:
    """``template`` with ``context`` and what every page shows (the operator, the language, the
    CSRF token for its forms, the messages left by the last action)."""
    visit = visit_of(request)
    console = console_of(request)
    operator = visit.operator
    t = visit.t
    page = console.templates.get_template(template).render(
        t=t,
        lang=visit.lang,
        operator=operator,
        roles_text=", ".join(t(f"role_{r}") for r in sorted(operator.roles)) if operator else "",
        describe=lambda failure: failure_words(t, failure),
        status_name=status_name,
        action_name=action_name,
        order_url=order_url,
        can_act=operator is not None and bool(operator.roles & WRITERS),
        can_approve=operator is not None and APPROVER in operator.roles,
        csrf_token=visit.session.csrf_token if visit.session is not None else "",
        flashes=visit.session.take_flashes() if visit.session is not None else [],
        path=request.path,
        query=dict(request.query),
        url_with=lambda **changes: url_with(request, **changes),
        lang_url=lambda code: url_with(request, lang=code),
        **context,
    )
    return web.Response(text=page, status=http_status, content_type="text/html", charset="utf-8")


def url_with(request: web.Request, **changes: object) -> str:
    """This page's URL with some query parameters changed (None or "" removes one)."""
    query = {k: v for k, v in request.query.items() if k != "lang"}
    for key, value in changes.items():
        if value is None or value == "":
            query.pop(key, None)
        else:
            query[key] = str(value)
    return request.path + ("?" + urlencode(query) if query else "")


def see_other(location: str) -> web.Response:
    """A 303 to ``location`` (after a POST: the browser GETs the page the result is shown on)."""
    return web.Response(status=303, headers={"Location": location})


def forbidden(request: web.Request, label: str) -> web.Response:
    title = visit_of(request).t("forbidden_title")
    return render(request, "error.html", http_status=403, title=title, message=label)


def require_role(request: web.Request, roles: Iterable[str]) -> web.Response | None:
    """None when the operator holds one of ``roles``; else the 403 page (nothing is done)."""
    operator = operator_of(request)
    if operator.roles & set(roles):
        return None
    log.warning("action_refused", path=request.path, subject=operator.subject, roles=sorted(operator.roles))
    return forbidden(request, "role_refused")


def failure_words(t: Translator, failure: CallFailed) -> str:
    """A refusal in words: our reason's word, the recharge center's message, the code."""
    words = t.word("reason", failure.reason)
    parts = [words]
    if failure.field:
        parts.append(f"({failure.field})")
    if failure.detail and failure.detail != words:
        parts.append(f"— {failure.detail}")
    parts.append(f"[{failure.reason}]")
    return " ".join(parts)


def flash_failure(
    request: web.Request, failure: CallFailed, label: str = "call_failed", **values: str
) -> None:
    visit = visit_of(request)
    if visit.session is not None:
        visit.session.flash("error", visit.t(label, why=failure_words(visit.t, failure), **values))


def flash(request: web.Request, kind: str, text: str) -> None:
    session = visit_of(request).session
    if session is not None:
        session.flash(kind, text)


def make_app(console: Console, pages: Iterable[web.RouteTableDef]) -> web.Application:
    app = web.Application(middlewares=[visit_middleware, guard_middleware], client_max_size=64 * 1024)
    app[CONSOLE] = console
    for routes in pages:
        app.router.add_routes(routes)
    app.router.add_static("/static/", HERE / "static", append_version=False)
    return app
