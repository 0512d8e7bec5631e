"""A bearer token in front of the streamable HTTP transport.

Agents on other hosts reach the server over HTTP; every request must carry
``Authorization: Bearer <token>``, compared in constant time. One shared secret fits the server's
model (it speaks for one agent); the SDK's OAuth resource-server machinery would need an
authorization server that no agent CLI setup here has. Requests without the right token get
``401`` and never reach the MCP session manager.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

MIN_TOKEN_CHARS = 16
_PREFIX = b"bearer "


def check_token(token: str | None) -> str:
    """The token to require; ``ValueError`` when missing or too short to resist guessing."""
    if not token:
        raise ValueError(
            "the HTTP transport needs a bearer token: pass --token or set SWARMQUEUE_MCP_TOKEN"
        )
    if len(token) < MIN_TOKEN_CHARS or not token.isprintable() or " " in token:
        raise ValueError(
            f"the bearer token must be at least {MIN_TOKEN_CHARS} printable characters without"
            " spaces (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


class BearerTokenGate:
    """ASGI middleware: HTTP requests need the bearer token; lifespan events pass through."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = check_token(token).encode()

    def allows(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value[: len(_PREFIX)].lower() == _PREFIX:
                return hmac.compare_digest(value[len(_PREFIX) :].strip(), self._expected)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.allows(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "unauthorized: missing or wrong bearer token"}).encode()
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="swarmqueue"'),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
