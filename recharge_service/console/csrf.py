"""Cross-site request forgery: what every POST must show before anything is done.

1. Its ``Origin`` header, when the browser sends one, names this console; else its ``Referer``,
   when there is one, does (``--origin``, or the request's own scheme and Host).
2. Its form carries the CSRF token of the session it acts in (compared in constant time).
   Before a login there is no session: the login form's token is the one in the login cookie
   (double submit), so another site cannot log a browser in under its own account.

The session cookie is also SameSite=Strict: a browser does not send it on a request another site
starts. These checks hold even where it would.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

FIELD = "csrf_token"


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (lower case; default ports left out); "" if none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme}://{host.lower()}{suffix}"


def refusal(*, expected_origin: str, origin: str | None, referer: str | None, sent: str, wanted: str) -> str:
    """Why this POST is refused ("" when it may go on): ``sent`` is the form's token, ``wanted``
    the session's (or the login cookie's)."""
    expected = origin_of(expected_origin)
    if origin is not None and origin != "null":
        if origin_of(origin) != expected:
            return "ORIGIN_MISMATCH"
    elif origin == "null":
        return "ORIGIN_MISMATCH"  # an opaque origin (a sandboxed frame, a data: URL)
    elif referer:
        if origin_of(referer) != expected:
            return "REFERER_MISMATCH"
    if not sent or not wanted:
        return "CSRF_TOKEN_MISSING"
    if not hmac.compare_digest(sent.encode("utf-8", "replace"), wanted.encode("utf-8", "replace")):
        return "CSRF_TOKEN_MISMATCH"
    return ""
