"""Serve the dashboard with uvicorn, in the foreground (``swarmqueue dashboard``) or in a
background thread (the demo's ``--dashboard``).

A live page keeps its event stream open, so shutting down waits at most
:data:`GRACEFUL_SECONDS` for pages before closing them.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from distributor.dashboard.access import check_bind
from distributor.dashboard.app import create_app
from distributor.errors import ValidationError
from distributor.settings import Settings
from distributor.store.client import async_redis_from_url, redis_from_url

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765
GRACEFUL_SECONDS = 1


class DashboardServer(uvicorn.Server):
    """uvicorn's server that first ends the pages' endless event streams when it stops, so
    they close cleanly instead of being cancelled after the grace period."""

    async def shutdown(self, sockets: Any = None) -> None:
        gate = self.config.app
        hub = getattr(getattr(getattr(gate, "app", None), "state", None), "hub", None)
        if hub is not None:
            hub.end_streams()
        await super().shutdown(sockets)


def build(settings: Settings, token: str | None = None) -> Any:
    """The dashboard app on the Redis of ``settings`` (which must answer now: a wrong URL is
    told at once, not on the first page)."""
    client = redis_from_url(settings.redis_url, settings.redis_retries)
    client.ping()
    return create_app(
        client,
        lambda: async_redis_from_url(settings.redis_url, settings.redis_retries),
        settings,
        token=token,
    )


def config(settings: Settings, host: str, port: int, token: str | None) -> uvicorn.Config:
    """The uvicorn configuration; refuses a non-loopback ``host`` without ``token``."""
    check_bind(host, token)
    if not 0 < port < 65536:
        raise ValidationError(f"invalid port {port}: must be 1-65535")
    check_free(host, port)
    return uvicorn.Config(
        build(settings, token),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        lifespan="on",
    )


def check_free(host: str, port: int) -> None:
    """Refuse a port something already listens on (uvicorn would log it and exit 1)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValidationError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ValidationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(settings: Settings, host: str, port: int, token: str | None) -> None:
    """Run until interrupted."""
    DashboardServer(config(settings, host, port, token)).run()


class Background:
    """The dashboard served from a daemon thread until :meth:`stop`."""

    def __init__(self, settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        self.server = DashboardServer(config(settings, host, port, None))
        self.url = url_of(host, port)
        self._thread = threading.Thread(target=self.server.run, name="dashboard", daemon=True)

    def start(self, wait: float = 10.0) -> None:
        """Start serving; return once the server listens (or after ``wait`` seconds)."""
        self._thread.start()
        deadline = time.monotonic() + wait
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.server.started:
            raise ValidationError(f"the dashboard did not start at {self.url} (port taken?)")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=GRACEFUL_SECONDS + 5)
