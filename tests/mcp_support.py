"""Helpers for the MCP tests: ``swarmqueue mcp`` started by the SDK's own stdio client."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent

SWARMQUEUE = Path(sys.executable).with_name("swarmqueue")  # the venv's installed command


def server_env(redis_url: str, swarm: str, **extra: str) -> dict[str, str]:
    """What a spawned server needs beyond the SDK's safe default environment."""
    env = {"SWARMQUEUE_REDIS_URL": redis_url, "SWARMQUEUE_SWARM": swarm, **extra}
    for name in ("SWARMQUEUE_STATE_DIR", "TMUX_TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


@contextlib.asynccontextmanager
async def agent_session(redis_url: str, swarm: str, agent: str) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session with ``swarmqueue mcp --agent AGENT`` over stdio."""
    params = StdioServerParameters(
        command=str(SWARMQUEUE),
        args=["mcp", "--agent", agent],
        env=server_env(redis_url, swarm, SWARMQUEUE_LOG_LEVEL="WARNING"),
    )
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: CallToolResult) -> str:
    """The text of a tool result's first content block."""
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def data_of(result: CallToolResult) -> dict[str, Any]:
    """A successful tool call's JSON reply."""
    assert not result.is_error, text_of(result)
    if result.structured_content is not None:
        return dict(result.structured_content)
    loaded = json.loads(text_of(result))
    assert isinstance(loaded, dict)
    return loaded


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call ``tool`` and return its JSON reply (failing the test on a tool error)."""
    return data_of(await session.call_tool(tool, arguments))
