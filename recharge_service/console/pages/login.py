"""Log in and out.

Login: the form's CSRF token is the login cookie's (double submit: there is no session yet); the
name and peer pair must not be locked out (``throttle``); the password is checked with scrypt; a
success starts a new session (a fresh id: nothing a visitor had before the login is reused) and
sends the browser where it was going. Logout ends the session (a POST with its CSRF token).
"""

from __future__ import annotations

import math
import secrets

from aiohttp import web

from recharge_service.console.web import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    console_of,
    log,
    render,
    see_other,
    set_cookie,
    visit_of,
)

routes = web.RouteTableDef()
TOKEN_CHARS = 43  # len(secrets.token_urlsafe(32))


def _safe_next(target: str) -> str:
    """Only a path of this console (never ``//host`` or a scheme): no open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/anomalies"


def _login_form(
    request: web.Request, *, http_status: int = 200, error: str = "", name: str = ""
) -> web.Response:
    # One token per browser until it logs in: a second login page (another tab) keeps the first valid.
    token = request.cookies.get(LOGIN_COOKIE, "")
    token = token if len(token) == TOKEN_CHARS else secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        http_status=http_status,
        login_token=token,
        error=error,
        name=name,
        next=_safe_next(request.query.get("next", "/anomalies")),
        bye=request.query.get("bye") == "1",
    )
    set_cookie(response, request, LOGIN_COOKIE, token, int(console_of(request).settings.login.form_lifetime))
    return response


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if visit_of(request).operator is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next", "/anomalies")))
    return _login_form(request)


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    t = visit_of(request).t
    form = await request.post()
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    peer = request.remote or ""
    wait = console.throttle.wait_seconds(name, peer)
    if wait > 0:
        log.warning("login_throttled", subject=name, peer=peer, wait_s=round(wait, 1))
        return _login_form(
            request, http_status=429, error=t("login_wait", seconds=math.ceil(wait)), name=name
        )
    account = console.accounts.check(name, password)
    if account is None:
        console.throttle.failed(name, peer)
        log.warning("login_failed", subject=name, peer=peer)
        return _login_form(request, http_status=401, error=t("login_failed"), name=name)
    console.throttle.succeeded(name, peer)
    session = console.sessions.create(account.subject)
    log.info("login_succeeded", subject=account.subject, roles=sorted(account.roles), peer=peer)
    response = see_other(_safe_next(str(form.get("next", "/anomalies"))))
    set_cookie(response, request, SESSION_COOKIE, session.session_id, int(console.settings.session.lifetime))
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    visit = visit_of(request)
    if visit.session is not None:
        console_of(request).sessions.end(visit.session.session_id)
        log.info("logged_out", subject=visit.session.subject)
    response = see_other("/login?bye=1")
    clear_cookie(response, request, SESSION_COOKIE)
    return response


@routes.get("/favicon.ico")
async def favicon(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


@routes.get("/")
async def home(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/anomalies")
