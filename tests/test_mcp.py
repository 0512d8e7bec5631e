"""``swarmqueue mcp`` driven the way agent CLIs drive it: the SDK's own client starts the server
as a subprocess (stdio) or reaches it over streamable HTTP, on a real Redis (the server is another
process), each test in a private swarm."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm
from tests.mcp_support import SWARMQUEUE, agent_session, call, server_env, text_of

# Every server start imports the SDK (1-5 s on a loaded machine): the whole-DAG and HTTP tests
# run with the long suite (.ci/run), the tool-error test in the default one.
pytestmark = pytest.mark.slow

TOKEN = "test-token-" + "x" * 24


def dag(n: int = 20) -> dict[str, Any]:
    """``n`` tasks: t00 first, then a tree (each task after its parent) with a few joins."""
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        deps = set() if i == 0 else {f"t{(i - 1) // 2:02d}"}
        if i >= 3 and i % 4 == 3:
            deps.add(f"t{i - 1:02d}")  # a join: two parents
        tasks.append({"id": f"t{i:02d}", "title": f"Task {i}", "dependencies": sorted(deps)})
    return {"tasks": tasks}


@pytest.fixture
def live(real_redis_url: str) -> Iterator[TaskQueue]:
    """A private swarm on the real Redis (deleted afterwards)."""
    queue = TaskQueue.from_url(real_redis_url, f"test-mcp-{uuid.uuid4().hex[:10]}")
    yield queue
    delete_swarm(queue)
    queue.redis.close()


@pytest.mark.long
def test_two_agents_drive_a_dag_to_completion_through_tools_alone(
    live: TaskQueue, real_redis_url: str
) -> None:
    plan = dag()
    live.submit(plan)
    deps = {t["id"]: set(t["dependencies"]) for t in plan["tasks"]}
    completed: list[str] = []
    claims: list[tuple[str, str]] = []
    progress_seen: list[float] = []

    async def work(session: ClientSession, agent: str, reply: dict[str, Any]) -> None:
        """The agent loop of MCP_LOOP: start, complete and take the next, until all is done."""
        task = reply["task"]
        while True:
            while task is not None:
                claims.append((agent, task["id"]))
                assert (await call(session, "start_task", task_id=task["id"]))["task"][
                    "status"
                ] == "in_progress"
                done = await call(session, "complete_task", task_id=task["id"])
                completed.append(task["id"])
                task = done["next"]
            status = await call(session, "swarm_status")
            if status["completed"] == status["total"]:
                return
            task = (await call(session, "next_task", wait_seconds=2))["task"]

    async def scenario() -> None:
        async with (
            agent_session(real_redis_url, live.swarm, "A") as a,
            agent_session(real_redis_url, live.swarm, "B") as b,
        ):
            first = await call(a, "next_task")  # t00: the only ready task
            assert first["task"]["id"] == "t00"
            waiting = asyncio.Event()

            async def progressed(
                progress: float, total: float | None, message: str | None
            ) -> None:
                progress_seen.append(progress)
                waiting.set()

            # B waits for work while A holds the only ready task; A completes it only once
            # B's wait has begun (its first progress notification), so B is woken by that
            # completion (nothing else would end its wait before 30 s)
            b_next = asyncio.ensure_future(
                b.call_tool("next_task", {"wait_seconds": 30}, progress_callback=progressed)
            )
            await asyncio.wait_for(waiting.wait(), 20)
            claims.append(("A", "t00"))
            done = await call(a, "complete_task", task_id="t00", take_next=False)
            completed.append("t00")
            assert set(done["now_available"]) == {"t01", "t02"} and "next" not in done
            b_first = (await asyncio.wait_for(b_next, 25))
            assert not b_first.is_error and b_first.structured_content is not None
            assert b_first.structured_content["task"]["id"] in {"t01", "t02"}
            a_first = await call(a, "next_task", wait_seconds=5)
            await asyncio.gather(
                work(a, "A", a_first), work(b, "B", b_first.structured_content)
            )
            final = await call(a, "swarm_status")
            assert final["completion_pct"] == 100.0 and final["total"] == 20

    asyncio.run(scenario())
    assert sorted(completed) == sorted(deps) and len(completed) == 20  # every task once
    assert len(claims) == 20 and {agent for agent, _ in claims} == {"A", "B"}
    assert progress_seen and progress_seen[0] == 0.0
    final = {t.id: t for t in live.tasks()}
    assert all(t.status.value == "completed" and t.attempts == 1 for t in final.values())
    for task_id, needs in deps.items():  # in dependency order, by Redis' clock
        claimed_at = final[task_id].claimed_at
        assert claimed_at is not None
        assert all(claimed_at >= final[d].completed_at for d in needs), task_id  # type: ignore[operator]


def test_a_lost_claim_comes_back_as_a_tool_error_with_the_cli_line(
    live: TaskQueue, real_redis_url: str
) -> None:
    live.submit({"tasks": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]})
    cli = CliContext(live.settings.model_copy(update={"swarm": live.swarm}), live)

    def cli_line(*args: str) -> str:
        result = CliRunner().invoke(main, list(args), obj=cli)
        assert result.exit_code == 1, result.output
        line = result.stderr.strip()
        assert line.startswith("swarmqueue: ") and "\n" not in line
        return line.removeprefix("swarmqueue: ")

    async def scenario() -> None:
        async with agent_session(real_redis_url, live.swarm, "A") as a:
            claim = (await call(a, "next_task"))["task"]
            live.cancel(claim["id"])  # the operator takes the task away
            live.retry(claim["id"])
            stale = await a.call_tool("complete_task", {"task_id": claim["id"]})
            assert stale.is_error
            assert text_of(stale) == cli_line(
                "done", claim["id"], "--agent", "A", "--token", str(claim["token"])
            )
            other = (await call(a, "next_task"))["task"]
            bogus = await a.call_tool("start_task", {"task_id": other["id"], "token": 999})
            assert bogus.is_error
            expected = cli_line("start", other["id"], "--agent", "A", "--token", "999")
            assert text_of(bogus) == expected
            assert "stale" in text_of(bogus)
            missing = await a.call_tool("show_task", {"task_id": "nope"})
            assert missing.is_error and text_of(missing) == cli_line("task", "nope")
            # the claim it still holds works: the error changed nothing
            assert (await call(a, "complete_task", task_id=other["id"]))["completed"] == other["id"]

    asyncio.run(scenario())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.long
def test_http_transport_needs_the_bearer_token(live: TaskQueue, real_redis_url: str) -> None:
    refused = subprocess.run(
        [str(SWARMQUEUE), "mcp", "--agent", "A", "--http"],
        check=False,
        env={**server_env(real_redis_url, live.swarm), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().startswith("swarmqueue: the HTTP transport needs a bearer token")

    live.submit({"tasks": [{"id": "only", "title": "The only task"}]})
    port = _free_port()
    env = {**server_env(real_redis_url, live.swarm), "SWARMQUEUE_MCP_TOKEN": TOKEN}
    server = subprocess.Popen(
        [str(SWARMQUEUE), "mcp", "--agent", "A", "--http", "--port", str(port)],
        env={**env, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        _wait_listening(port, server)
        anonymous = httpx2.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx2.post(url, json={}, headers={"Authorization": "Bearer " + "y" * 35})
        assert wrong.status_code == 401

        async def scenario() -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                init = await session.initialize()
                assert init.instructions is not None and "next_task" in init.instructions
                return await call(session, "next_task")

        assert asyncio.run(scenario())["task"]["id"] == "only"
        assert live.get("only").agent_id == "A"
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert server.stderr is not None
        server.stderr.close()


def _wait_listening(port: int, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


def test_mcp_refuses_bad_input_in_one_line(cli_obj: CliContext) -> None:
    runner = CliRunner()
    for args, expected in (
        (["mcp", "--agent", "no spaces"], "invalid agent id"),
        (["mcp", "--agent", "A", "--http", "--token", "short"], "at least 16 printable"),
        (["mcp", "--agent", "A", "--swarm", ".."], "swarm"),
    ):
        result = runner.invoke(main, args, obj=cli_obj)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("swarmqueue: ") and result.stderr.count("\n") == 1
        assert expected in result.stderr, result.stderr
