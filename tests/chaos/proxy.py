"""A TCP proxy in front of a redis-server that loses a fraction of the replies.

Each client connection gets its own connection to the server; bytes from the client are passed
on as they come. When bytes of a reply come back, the proxy passes them on, or, with probability
``drop_fraction``, closes both connections instead: the server has run the command, the client
never hears about it. That is a reply lost on the wire (a dropped network path, a proxy or load
balancer restart), the case request ids exist for: the client's retry must be answered from the
stored outcome, not applied a second time::

    client  EVALSHA complete(T, request id R) ->  proxy  ->  server runs it, stores R's reply
    client  <- connection closed                  proxy  X   reply dropped
    client  EVALSHA complete(T, request id R) ->  proxy  ->  server: R seen, same reply again
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

_CHUNK = 65536


@dataclass
class ProxyStats:
    """What the proxy did so far."""

    connections: int = 0
    replies: int = 0  # reply chunks passed on
    dropped: int = 0  # reply chunks dropped (each closed a connection)


class DroppingProxy:
    """Listens on a free port of 127.0.0.1 and forwards to ``127.0.0.1:upstream_port``."""

    def __init__(self, upstream_port: int, drop_fraction: float, seed: int) -> None:
        if not 0.0 <= drop_fraction <= 1.0:
            raise ValueError("drop_fraction must be in [0, 1]")
        self.upstream_port = upstream_port
        self.drop_fraction = drop_fraction
        self.stats = ProxyStats()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # accept() wakes up to notice close()
        self.port: int = self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> DroppingProxy:
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue  # look at _closed again
            except OSError:  # the listener was closed: the proxy stops
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()  # the server is away: the client sees a closed connection
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self.stats.connections += 1
                self._sockets.update((client, upstream))
            self._spawn(self._requests, client, upstream)
            self._spawn(self._replies, upstream, client)

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client to server, unchanged."""
        try:
            while data := client.recv(_CHUNK):
                upstream.sendall(data)
        except OSError:
            pass  # either side closed: the pair is shut down below
        self._shut(client, upstream)

    def _replies(self, upstream: socket.socket, client: socket.socket) -> None:
        """Server to client, losing a reply now and then (and with it the connection)."""
        try:
            while data := upstream.recv(_CHUNK):
                with self._lock:
                    drop = self._rng.random() < self.drop_fraction
                    if drop:
                        self.stats.dropped += 1
                    else:
                        self.stats.replies += 1
                if drop:
                    break
                client.sendall(data)
        except OSError:
            pass
        self._shut(client, upstream)

    def _shut(self, *pair: socket.socket) -> None:
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the other thread's recv
            sock.close()
            with self._lock:
                self._sockets.discard(sock)

    def close(self) -> None:
        """Stop accepting, close every connection and wait for the threads."""
        with self._lock:
            self._closed = True
            open_sockets = list(self._sockets)
            threads = list(self._threads)
        self._listener.close()
        self._shut(*open_sockets)
        for thread in threads:
            thread.join(timeout=5)
