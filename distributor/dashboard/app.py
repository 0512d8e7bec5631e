"""The dashboard's ASGI application: server-rendered pages, the live stream, and /metrics.

Pages are rendered by Jinja2 with autoescaping on, so every string an agent wrote (titles,
messages, reasons, ids) reaches the page escaped; the page script inserts live text with
``textContent`` only. Page handlers are plain functions (Starlette runs them in its thread
pool) reading with the blocking client; the live stream runs on the event loop with the
asyncio client of :class:`~distributor.dashboard.live.Hub`. Nothing here writes to Redis.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from typing import Any

import redis
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from distributor.dashboard import graph, views
from distributor.dashboard.access import TokenGate
from distributor.dashboard.live import Hub
from distributor.dashboard.metrics import registry_for, render
from distributor.errors import RedisUnavailable, TaskNotFound, ValidationError
from distributor.log import get_logger
from distributor.settings import Settings
from distributor.store.connect import AsyncRedis, SyncRedis
from distributor.store.keys import NAMESPACE
from distributor.tasks.events import check_since

log = get_logger(__name__)
# Defence in depth behind the escaping: only the package's own script runs, nothing is framed.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

KEEPALIVE_SECONDS = 15.0
STATUS_COLOURS = {
    "blocked": "#9aa0a6",
    "available": "#4285f4",
    "waiting": "#f9ab00",
    "claimed": "#a142f4",
    "in_progress": "#7b1fa2",
    "completed": "#1e8e3e",
    "failed": "#d93025",
    "cancelled": "#5f6368",
}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12s``."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _json_script(value: Any) -> Markup:
    """``value`` as JSON safe inside a ``<script type="application/json">`` element."""
    raw = json.dumps(value, separators=(",", ":"))
    safe = raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(safe)  # every <, > and & is escaped above


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("distributor.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["json_script"] = _json_script
    env.filters["duration"] = _duration
    env.globals["colours"] = STATUS_COLOURS
    env.globals["statuses"] = graph.STATUS_ORDER
    env.globals["node_w"], env.globals["node_h"] = graph.NODE_W, graph.NODE_H
    env.globals["box_w"], env.globals["box_h"] = graph.BOX_W, graph.BOX_H
    return env


def create_app(
    client: SyncRedis,
    async_client_factory: Callable[[], AsyncRedis],
    settings: Settings | None = None,
    *,
    token: str | None = None,
    namespace: str = NAMESPACE,
) -> TokenGate:
    """The dashboard on ``client`` (pages, metrics) and clients made by ``async_client_factory``
    (the live stream; called once inside the server's event loop); with ``token``, every request
    must carry it (see :mod:`distributor.dashboard.access`)."""
    reader = views.Reader(client, settings or Settings(), namespace)
    env = _environment()
    hub = Hub(async_client_factory)
    metrics_registry = registry_for(reader)

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(request=request, **context)
        return HTMLResponse(html, headers=PAGE_HEADERS)

    def swarm_name(request: Request) -> str:
        return str(request.path_params["swarm"])

    def home(request: Request) -> HTMLResponse:
        return page(request, "swarms.html", swarms=views.swarms(reader))

    def swarm(request: Request) -> HTMLResponse:
        view = views.swarm_view(reader, swarm_name(request))
        return page(
            request, "swarm.html", swarm=swarm_name(request), view=view,
            tasks_json=views.as_json_statuses(view), stream_since=view.last_event,
        )  # fmt: skip

    def task(request: Request) -> HTMLResponse:
        try:
            view = views.task_view(reader, swarm_name(request), request.path_params["task"])
        except (TaskNotFound, ValidationError):
            raise HTTPException(404, "no such task") from None
        return page(request, "task.html", swarm=swarm_name(request), view=view)

    def agents(request: Request) -> HTMLResponse:
        rows = views.agents_view(reader, swarm_name(request))
        return page(request, "agents.html", swarm=swarm_name(request), rows=rows)

    def workers(request: Request) -> HTMLResponse:
        hosts = views.workers_view(reader, swarm_name(request))
        return page(request, "workers.html", swarm=swarm_name(request), hosts=hosts)

    def messages(request: Request) -> HTMLResponse:
        only = request.query_params.get("undelivered") == "1"
        found = views.messages_view(reader, swarm_name(request), only)
        return page(
            request, "messages.html", swarm=swarm_name(request), messages=found, undelivered=only
        )

    def event_tail(request: Request) -> HTMLResponse:
        found = views.events_view(reader, swarm_name(request))
        return page(
            request, "events.html", swarm=swarm_name(request), events=found,
            stream_since=found[0].id if found else "0-0",
        )  # fmt: skip

    async def stream(request: Request) -> StreamingResponse:
        keys = await asyncio.to_thread(reader.swarm, swarm_name(request))
        # EventSource sends the last id it got when it reconnects: resume from there
        since = request.headers.get("last-event-id") or request.query_params.get("since")
        if since is not None:
            try:
                check_since(since)
            except ValidationError:
                raise HTTPException(400, "bad since") from None

        async def body() -> AsyncIterator[str]:
            async with hub.subscribe(keys, since) as queue:
                yield ": connected\n\n"
                while True:
                    try:
                        update = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if update is None:
                        return
                    yield f"id: {update['last']}\ndata: {json.dumps(update)}\n\n"

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def metrics(request: Request) -> Response:
        return Response(
            render(metrics_registry),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    async def not_found(request: Request, exc: Exception) -> HTMLResponse:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        detail = exc.detail if isinstance(exc, HTTPException) else "not found"
        html = env.get_template("error.html").render(status=status, detail=detail)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    async def redis_trouble(request: Request, exc: Exception) -> HTMLResponse:
        log.warning("dashboard page without redis", path=request.url.path, error=str(exc))
        html = env.get_template("error.html").render(
            status=503, detail="Redis cannot be read right now; reload once it answers"
        )
        return HTMLResponse(html, status_code=503)

    async def missing_swarm(request: Request, exc: Exception) -> HTMLResponse:
        html = env.get_template("error.html").render(status=404, detail="no such swarm")
        return HTMLResponse(html, status_code=404)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await hub.close()

    static = StaticFiles(directory=str(resources.files("distributor.dashboard") / "static"))
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/metrics", metrics),
            Mount("/static", static, name="static"),
            Route("/swarm/{swarm}", swarm),
            Route("/swarm/{swarm}/task/{task}", task),
            Route("/swarm/{swarm}/agents", agents),
            Route("/swarm/{swarm}/workers", workers),
            Route("/swarm/{swarm}/messages", messages),
            Route("/swarm/{swarm}/events", event_tail),
            Route("/swarm/{swarm}/stream", stream),
        ],
        exception_handlers={
            HTTPException: not_found,
            views.SwarmMissing: missing_swarm,
            RedisUnavailable: redis_trouble,  # also refused credentials, a failed TLS handshake
            redis.RedisError: redis_trouble,
        },
        lifespan=lifespan,
    )
    app.state.hub = hub
    return TokenGate(app, token)
