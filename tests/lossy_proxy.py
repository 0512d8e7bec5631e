"""A Redis that loses a reply and restarts: a TCP proxy in front of a private AOF redis-server.

``LossyProxy`` passes bytes both ways; armed with :meth:`LossyProxy.lose_next_reply`, it lets
the next ``EVALSHA`` reach Redis, waits for Redis' reply (so the script ran and, with
``--appendfsync always``, is on disk; an error reply such as ``NOSCRIPT`` is passed on and the
next one is awaited), closes the client's connection instead of passing the reply on, and kills
the server: the client cannot tell whether its request was applied.
:class:`~tests.redis_server.AofRedis` restarts the server on the same port with its data.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

_EVALSHA = b"$7\r\nEVALSHA\r\n"


class LossyProxy:
    """Listens on a free loopback port and forwards every connection to ``upstream_port``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._armed: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.lost = 0  # replies lost so far
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def lose_next_reply(self, then: Callable[[], None]) -> None:
        """Lose the reply of the next ``EVALSHA``, then call ``then`` (e.g. crash the server)."""
        with self._lock:
            self._armed = then

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=1)
            except OSError:
                client.close()  # Redis is down: the client sees its connection closed
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._to_redis, args=(client, upstream), daemon=True).start()

    def _to_redis(self, client: socket.socket, upstream: socket.socket) -> None:
        """Pass commands on; the replies come back through :meth:`_to_client`."""
        losing = threading.Event()
        threading.Thread(
            target=self._to_client, args=(upstream, client, losing), daemon=True
        ).start()
        for chunk in _chunks(client):
            with self._lock:
                if self._armed is not None and _EVALSHA in chunk:
                    losing.set()
            with contextlib.suppress(OSError):
                upstream.sendall(chunk)
        _close(client, upstream)

    def _to_client(
        self, upstream: socket.socket, client: socket.socket, losing: threading.Event
    ) -> None:
        for chunk in _chunks(upstream):
            if losing.is_set() and chunk.startswith(b"-"):
                losing.clear()  # NOSCRIPT: nothing ran; redis-py loads the script, sends again
            if losing.is_set():
                with self._lock:
                    then, self._armed = self._armed, None
                    self.lost += 1
                _close(client, upstream)
                if then is not None:
                    then()
                return
            with contextlib.suppress(OSError):
                client.sendall(chunk)
        _close(client, upstream)


def _chunks(sock: socket.socket) -> Iterator[bytes]:
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        yield chunk


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
