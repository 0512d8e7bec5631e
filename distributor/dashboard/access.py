"""Who may see the dashboard: loopback only, unless a token is set; then every request shows it.

Binding to another address without a token is refused before the server starts. With a token,
each request (pages, the live stream, ``/metrics``, static files) must carry it, compared in
constant time, as ``Authorization: Bearer <token>`` (Prometheus' ``authorization`` scrape
setting), or in the cookie that a ``?token=<token>`` link sets (the link then redirects to
itself without the token, so it does not linger in the address bar or history).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from distributor.errors import ValidationError

COOKIE = "swarmqueue_dashboard_token"
MIN_TOKEN_CHARS = 16
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]{16,256}")  # safe in a header, a cookie and a URL


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse (``ValidationError``) a non-loopback address without a token, or a short token."""
    if token is not None and not _TOKEN_RE.fullmatch(token):
        raise ValidationError(
            f"--token must be {MIN_TOKEN_CHARS}-256 letters, digits, '.', '_', '~' or '-'"
        )
    if token is None and not is_loopback(host):
        raise ValidationError(
            f"refusing to serve on {host} without --token: only loopback addresses are served"
            " without one"
        )


def _presented(scope: Scope) -> tuple[str | None, str | None]:
    """The token in the Authorization header or the cookie, and in the query string."""
    header = cookie = None
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            kind, _, cred = value.decode("latin-1").partition(" ")
            if kind.lower() == "bearer":
                header = cred.strip()
        elif name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            jar.load(value.decode("latin-1"))
            if COOKIE in jar:
                cookie = jar[COOKIE].value
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    return header or cookie, query.get("token")


class TokenGate:
    """ASGI middleware: with a token set, answer 401 to any request that does not carry it."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    def _valid(self, value: str | None) -> bool:
        assert self.token is not None
        return value is not None and hmac.compare_digest(value.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        carried, in_query = _presented(scope)
        if in_query is not None and self._valid(in_query):
            await _redirect_with_cookie(scope, send, in_query)
            return
        if not self._valid(carried):
            await _refuse(send)
            return
        await self.app(scope, receive, send)


async def _refuse(send: Send) -> None:
    body = b"401: this dashboard needs its token (see the README's dashboard section)\n"
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"www-authenticate", b'Bearer realm="swarmqueue"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect_with_cookie(scope: Scope, send: Send, token: str) -> None:
    rest = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode()) if k != "token"]
    location = scope.get("root_path", "") + scope["path"] + ("?" + urlencode(rest) if rest else "")
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
        }
    )
    await send({"type": "http.response.body", "body": b""})
