"""A blocking facade over ``AsyncTaskQueue``, so the sync test bodies also drive the asyncio client.

An event loop runs in a background thread; every coroutine method is proxied with
``run_coroutine_threadsafe`` and waited for, and ``follow`` turns the async iterator into a plain
one. Several test threads may call at once: their coroutines interleave on the one loop, as they
would in an asyncio service. ``redis`` is a *sync* client on the same server, for the tests'
direct inspection of keys.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import redis
import redis.asyncio

from distributor.settings import Settings
from distributor.store.connect import SyncRedis
from distributor.tasks.aio import AsyncTaskQueue
from distributor.tasks.models import Event

T = TypeVar("T")


class BlockingAsyncQueue:
    """``TaskQueue``'s interface, served by an ``AsyncTaskQueue`` on a background event loop."""

    def __init__(
        self,
        make_client: Callable[[], redis.asyncio.Redis],
        sync_client: SyncRedis,
        swarm: str,
        settings: Settings,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aio-loop", daemon=True)
        self._thread.start()

        async def build() -> AsyncTaskQueue:  # the client's connections belong to this loop
            return AsyncTaskQueue(make_client(), swarm, settings=settings)

        self.inner = self._call(build())
        self.redis = sync_client
        self.keys = self.inner.keys
        self.settings = self.inner.settings
        self.ops = self.inner.ops

    @property
    def swarm(self) -> str:
        return self.inner.swarm

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._call(attr(*args, **kwargs))

        return blocking

    def follow(self, since: str = "$", *, timeout: float | None = None) -> Iterator[Event]:
        """The async iterator of events, one ``anext`` on the loop per item."""
        events = self.inner.follow(since, timeout=timeout)

        async def step() -> tuple[bool, Event | None]:
            try:
                return True, await anext(events)
            except StopAsyncIteration:
                return False, None

        try:
            while True:
                more, event = self._call(step())
                if not more:
                    return
                assert event is not None
                yield event
        finally:
            if isinstance(events, AsyncGenerator):
                self._call(events.aclose())

    def close(self) -> None:
        """Close the async client, then stop and close the loop (a second call does nothing)."""
        if self._loop.is_closed():
            return
        try:
            self._call(self.inner.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
