"""``swarmqueue mcp``: the MCP server of one agent, on the official ``mcp`` SDK (``MCPServer``).

stdio by default (what a local agent CLI launches); streamable HTTP for agents on other hosts,
behind a bearer token (:mod:`distributor.mcp.auth`), bound to 127.0.0.1 unless told otherwise.
The server's ``instructions`` carry the agent's loop; the tools are in :mod:`distributor.mcp.tools`;
two resources show a task and the swarm's progress.
"""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import PackageNotFoundError, version

import redis
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.stdio import stdio_server

from distributor.errors import SwarmQueueError, TaskNotFound
from distributor.log import get_logger
from distributor.mcp import stdio, tools
from distributor.mcp.auth import BearerTokenGate, check_token
from distributor.mcp.priming import MCP_LOOP, render
from distributor.mcp.session import AgentSession
from distributor.messaging.sanitize import strip_controls
from distributor.settings import Settings
from distributor.store.error_lines import error_line

log = get_logger(__name__)

HTTP_PATH = "/mcp"


def _version() -> str:
    try:
        return version("swarmqueue")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"


def _resource_error(exc: SwarmQueueError | redis.RedisError, redis_url: str) -> ResourceError:
    _, line = error_line(exc, redis_url, rerun=tools.MCP_RERUN)
    kind = ResourceNotFoundError if isinstance(exc, TaskNotFound) else ResourceError
    return kind(strip_controls(line))


def build(session: AgentSession) -> MCPServer:
    """The MCP server for ``session``'s agent: instructions, tools and resources."""
    mcp: MCPServer = MCPServer(
        "swarmqueue",
        title=f"swarmqueue: agent {session.agent} in swarm {session.swarm}",
        instructions=MCP_LOOP.format(agent=session.agent, swarm=session.swarm),
        version=_version(),
    )
    tools.register(mcp, session)
    url = session.settings.redis_url

    @mcp.resource(
        "swarmqueue://task/{task_id}",
        name="task",
        description="One task of the swarm in full (JSON).",
        mime_type="application/json",
    )
    async def task_resource(task_id: str) -> str:
        try:
            return json.dumps(await session.task(task_id))
        except (SwarmQueueError, redis.RedisError) as exc:
            raise _resource_error(exc, url) from None

    @mcp.resource(
        "swarmqueue://swarm/progress",
        name="progress",
        description="The swarm's progress: tasks per status, completion, who holds what (JSON).",
        mime_type="application/json",
    )
    async def progress_resource() -> str:
        try:
            return json.dumps(await session.status())
        except (SwarmQueueError, redis.RedisError) as exc:
            raise _resource_error(exc, url) from None

    @mcp.resource(
        "swarmqueue://agent/brief",
        name="brief",
        description="This agent's start-of-session brief: its claims, messages, the swarm's"
        " progress (what `swarmqueue prime` prints).",
        mime_type="text/plain",
    )
    async def brief_resource() -> str:
        try:
            return render(await session.brief())
        except (SwarmQueueError, redis.RedisError) as exc:
            raise _resource_error(exc, url) from None

    return mcp


async def serve_stdio(settings: Settings, agent_id: str) -> None:
    """Serve ``agent_id`` over stdin/stdout until the client closes them."""
    session = AgentSession(settings, agent_id)
    server = build(session)
    try:
        if not stdio.usable():  # a terminal or a file: the SDK's own thread-backed streams
            await server.run_stdio_async()
            return
        # The SDK's framing on event-loop pipes (see distributor.mcp.stdio); MCPServer's
        # run_stdio_async takes no streams, so its low-level server is run as it would run it.
        lowlevel = server._lowlevel_server
        async with (
            stdio.pipe_streams() as (stdin, stdout),
            stdio_server(stdin, stdout) as (read, write),
        ):
            await lowlevel.run(read, write, lowlevel.create_initialization_options())
    finally:
        await session.aclose()


async def serve_http(settings: Settings, agent_id: str, host: str, port: int, token: str) -> None:
    """Serve ``agent_id`` over streamable HTTP at ``http://host:port/mcp`` behind the token."""
    import uvicorn

    token = check_token(token)
    session = AgentSession(settings, agent_id)
    app = build(session).streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    config = uvicorn.Config(
        BearerTokenGate(app, token), host=host, port=port, log_level="warning", lifespan="on"
    )
    log.info("mcp_http_serving", host=host, port=port, path=HTTP_PATH, agent_id=agent_id)
    try:
        await uvicorn.Server(config).serve()
    finally:
        await session.aclose()


def run(
    settings: Settings,
    agent_id: str,
    *,
    http: bool = False,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
) -> None:
    """Run the server in this process until it is stopped."""
    if http:
        asyncio.run(serve_http(settings, agent_id, host, port, check_token(token)))
    else:
        asyncio.run(serve_stdio(settings, agent_id))
