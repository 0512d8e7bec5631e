"""The dashboard's pages, token gate, live feed and /metrics, on fakeredis and a real Redis.

Pages are fetched with Starlette's test client; the live stream (an endless response) is read
from the app served by uvicorn on a loopback port.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest
import redis
import redis.asyncio
from click.testing import CliRunner
from markupsafe import escape
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.dashboard import graph
from distributor.dashboard.access import COOKIE, check_bind
from distributor.dashboard.app import create_app
from distributor.dashboard.live import Hub
from distributor.errors import ValidationError
from distributor.settings import Settings
from distributor.store.client import redis_from_url
from distributor.store.keys import SwarmKeys
from distributor.tasks.queue import TaskQueue
from tests.dashboard_support import (
    HOSTILE,
    Scene,
    exhaust_rate_limit,
    free_port,
    populate,
    served,
)
from tests.messaging_support import Messaging
from workers.worker import build_worker

TOKEN = "s3cret-token-0123456789"


@pytest.fixture
def test_settings() -> Settings:
    """A retry backoff that outlasts the test, so the waiting task stays waiting."""
    return Settings(retry_backoff_seconds=600.0, retry_backoff_max_seconds=600.0)


@pytest.fixture
def ms(sync_queue: TaskQueue) -> Iterator[Messaging]:
    m = Messaging(sync_queue.redis, sync_queue.swarm, rate_limit_per_minute=3)
    yield m
    m.close()


@pytest.fixture
def scene(sync_queue: TaskQueue, ms: Messaging) -> Scene:
    return populate(sync_queue, ms)


@pytest.fixture
def app_factory(
    redis_client: redis.Redis,
    async_client_factory: Callable[[], redis.asyncio.Redis],
    ms: Messaging,
) -> Callable[..., Any]:
    return lambda **kw: create_app(redis_client, async_client_factory, ms.settings, **kw)


@pytest.fixture
def client(app_factory: Callable[..., Any]) -> Iterator[TestClient]:
    with TestClient(app_factory()) as c:
        yield c


def test_every_page_shows_the_swarm(
    client: TestClient, sync_queue: TaskQueue, scene: Scene, ms: Messaging
) -> None:
    s = sync_queue.swarm
    home = client.get("/")
    assert home.status_code == 200 and f'href="/swarm/{s}"' in home.text
    row = home.text.split(f'href="/swarm/{s}"', 1)[1].split("</tr>", 1)[0]
    assert "</div></div> 16.7%</td>" in row  # the progress
    assert re.search(r"<td>\d+s</td>", row)  # its age: seconds since its first event

    page = client.get(f"/swarm/{s}")
    assert page.status_code == 200
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert 'id="pct">16.7<' in page.text  # 1 of 6 completed
    assert 'data-task="a"' in page.text and 'class="node st-completed"' in page.text
    assert "<svg class=\"chart\"" in page.text  # the completions chart
    assert "Flaky step" in page.text and "retry due" in page.text  # the backoff table
    assert "disk &lt;full&gt;" in page.text  # the failure's reason, escaped
    assert f"/swarm/{s}/stream?since=" in page.text

    task = client.get(f"/swarm/{s}/task/e")
    assert task.status_code == 200
    assert "bob (token" in task.text and " s (until " in task.text  # holder, lease left
    assert "claimed" in task.text and "submitted" in task.text  # its history
    assert "unblocked by a" in task.text

    agents = client.get(f"/swarm/{s}/agents")
    assert agents.status_code == 200
    assert "alice" in agents.text and "%2" in agents.text and 'href="/swarm/' in agents.text

    workers = client.get(f"/swarm/{s}/workers")
    assert workers.status_code == 200
    assert ms.host in workers.text and f"swarmqueue-deliver-{ms.host}" in workers.text
    assert "finished: failed 2" in workers.text  # the burst worker's last job and its outcome
    assert "none alive" in workers.text  # the burst worker has gone
    worker = build_worker(ms.rq, ms.host)
    worker.register_birth()  # type: ignore[no-untyped-call]  # what a running worker did
    try:
        workers = client.get(f"/swarm/{s}/workers")
        assert ">alive<" in workers.text and worker.name in workers.text
    finally:
        worker.register_death()  # type: ignore[no-untyped-call]

    messages = client.get(f"/swarm/{s}/messages")
    assert messages.status_code == 200
    assert scene.message_id[:8] in messages.text and "failed" in messages.text
    only = client.get(f"/swarm/{s}/messages?undelivered=1")
    assert scene.message_id[:8] in only.text  # nobody got it: both failed

    events = client.get(f"/swarm/{s}/events")
    assert events.status_code == 200 and "completed" in events.text

    assert client.get("/swarm/no-such-swarm").status_code == 404
    assert client.get("/swarm/bad%20name").status_code == 404
    assert client.get(f"/swarm/{s}/task/nope").status_code == 404
    assert client.get("/static/dash.js").status_code == 200


def test_hostile_text_is_escaped_everywhere(
    client: TestClient, sync_queue: TaskQueue, scene: Scene
) -> None:
    s = sync_queue.swarm
    for path in (
        f"/swarm/{s}",
        f"/swarm/{s}/task/{scene.hostile}",
        f"/swarm/{s}/task/{scene.waiting}",
        f"/swarm/{s}/messages",
        f"/swarm/{s}/events",
    ):
        body = client.get(path).text
        assert "<script>alert" not in body, path
        assert "\"double\"" not in body and "'quoted'" not in body, path
    task = client.get(f"/swarm/{s}/task/{scene.hostile}").text
    assert str(escape(HOSTILE)) in task  # shown, as text
    swarm_page = client.get(f"/swarm/{s}").text
    assert str(escape(HOSTILE)) in swarm_page  # the retry's reason
    data = swarm_page.split('id="tasks">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["d"] == [1, "available"]  # the page script's data parses


def test_non_loopback_bind_needs_a_token(sync_queue: TaskQueue) -> None:
    with pytest.raises(ValidationError, match="without --token"):
        check_bind("0.0.0.0", None)
    for bad in ("short", "sixteen chars but; spaces"):
        with pytest.raises(ValidationError, match="16-256 letters"):
            check_bind("0.0.0.0", bad)
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", TOKEN)
    result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("swarmqueue: refusing to serve on 0.0.0.0")
    assert "Traceback" not in result.output


def test_token_is_checked_on_every_request(
    app_factory: Callable[..., Any], sync_queue: TaskQueue, scene: Scene
) -> None:
    s = sync_queue.swarm
    with TestClient(app_factory(token=TOKEN)) as c:
        for path in ("/", f"/swarm/{s}", "/metrics", f"/swarm/{s}/stream", "/static/dash.css"):
            assert c.get(path).status_code == 401, path
            refused = c.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"})
            assert refused.status_code == 401, path
        ok = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and "swarmqueue_tasks" in ok.text
        link = c.get(f"/swarm/{s}?token={TOKEN}", follow_redirects=False)
        assert link.status_code == 303 and link.headers["location"] == f"/swarm/{s}"
        assert link.headers["set-cookie"].startswith(f"{COOKIE}={TOKEN};")
        assert "HttpOnly" in link.headers["set-cookie"]
        assert c.get(f"/swarm/{s}").status_code == 200  # the cookie now carries it
        c.cookies.clear()
        assert c.get(f"/swarm/{s}").status_code == 401


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_equal_the_swarms_counts(
    client: TestClient, sync_queue: TaskQueue, scene: Scene, ms: Messaging
) -> None:
    s = sync_queue.swarm
    refused, sent = exhaust_rate_limit(ms, "chatty", ms.settings.rate_limit_per_minute)
    found = _samples(client.get("/metrics").text)
    counts = sync_queue.progress()
    for status in ("blocked", "available", "waiting", "claimed", "completed", "failed"):
        assert found[("swarmqueue_tasks", (("status", status), ("swarm", s)))] == counts[status]
    events = sync_queue.events()
    for name, kind in (
        ("swarmqueue_claims_total", "claimed"),
        ("swarmqueue_completions_total", "completed"),
        ("swarmqueue_failures_total", "failed"),
        ("swarmqueue_expiries_total", "expired"),
    ):
        assert found[(name, (("swarm", s),))] == sum(e.type == kind for e in events), name
    assert found[("swarmqueue_active_agents", (("swarm", s),))] == 2
    assert found[
        ("swarmqueue_rate_limit_refusals_total", (("sender", "chatty"), ("swarm", s)))
    ] == refused
    outcomes: Counter[tuple[str, str]] = Counter(
        (d.status.value, d.reason or "")
        for message_id in [scene.message_id, *sent]
        for d in ms.messenger.get(message_id).deliveries
    )
    shown = {
        (dict(labels)["status"], dict(labels)["reason"]): value
        for (name, labels), value in found.items()
        if name == "swarmqueue_deliveries" and dict(labels)["swarm"] == s
    }
    assert shown == outcomes and sum(outcomes.values()) == 2 * (1 + len(sent))
    age = found[("swarmqueue_oldest_ready_task_age_seconds", (("swarm", s),))]
    assert age >= 0

    cli = CliRunner().invoke(
        main, ["metrics", "--json"], obj=CliContext(ms.settings, sync_queue)
    )
    assert cli.exit_code == 0, cli.output
    rows = json.loads(cli.output)
    mine = [r for r in rows if r["labels"].get("swarm") == s and r["name"] == "swarmqueue_tasks"]
    assert {r["labels"]["status"]: r["value"] for r in mine}["completed"] == counts["completed"]


def test_one_reader_per_swarm_however_many_pages(
    sync_queue: TaskQueue,
    async_client_factory: Callable[[], redis.asyncio.Redis],
    scene: Scene,
) -> None:
    keys = SwarmKeys(sync_queue.swarm)

    async def scenario() -> list[dict[str, Any]]:
        hub = Hub(async_client_factory)
        got: list[dict[str, Any]] = []
        try:
            async with hub.subscribe(keys) as q1, hub.subscribe(keys) as q2:
                async with hub.subscribe(keys) as q3:
                    feed = hub.feeds[keys.swarm]
                    await asyncio.sleep(0.05)
                    before = feed.reads
                    claim = await asyncio.to_thread(sync_queue.claim, "d", "alice")
                    assert claim.claim is not None
                    for q in (q1, q2, q3):
                        got.append(await asyncio.wait_for(q.get(), 10))  # type: ignore[arg-type]
                    # one XREAD for the batch, then counts and statuses: 3 calls for 3 pages
                    assert feed.reads - before <= 4
                assert keys.swarm in hub.feeds  # two pages still watch
            assert keys.swarm not in hub.feeds  # the last one left: the reader stopped
        finally:
            await hub.close()
        return got

    updates = asyncio.run(scenario())
    assert updates[0] is updates[1] is updates[2]  # the same update fanned out
    assert updates[0]["statuses"]["d"] == "claimed"
    assert updates[0]["counts"]["claimed"] == 2 and updates[0]["events"][0]["type"] == "claimed"


def test_the_stream_sends_updates_to_an_open_page(
    app_factory: Callable[..., Any], sync_queue: TaskQueue, scene: Scene
) -> None:
    s = sync_queue.swarm
    since = sync_queue.events()[-1].id
    with (
        served(app_factory()) as base,
        httpx2.stream("GET", f"{base}/swarm/{s}/stream?since={since}", timeout=10) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == ": connected"
        claim = sync_queue.claim("d", "alice").claim
        assert claim is not None
        sync_queue.complete("d", "alice", claim.token)
        seen: dict[str, str] = {}
        kinds: list[str] = []
        for line in lines:
            if line.startswith("data: "):
                update = json.loads(line.removeprefix("data: "))
                seen.update(update["statuses"])
                kinds += [e["type"] for e in update["events"] if e["task"] == "d"]
                # an update may name a later status than its counts show: the next one, for
                # the later event, brings the counts along
                if seen.get("d") == "completed" and update["counts"]["completed"] == 2:
                    break
        assert update["pct"] == 33.3
        while kinds[-1] != "completed":  # its event may come in the update after its status
            line = next(lines)
            if line.startswith("data: "):
                kinds += [e["type"] for e in json.loads(line[6:])["events"] if e["task"] == "d"]
        assert kinds == ["claimed", "completed"]


def test_layers_and_collapsed_drawing() -> None:
    def task(i: str, *deps: str) -> graph.Item:
        return graph.Item(i, f"T {i}", "blocked", list(deps))

    diamond = [task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c"), task("e")]
    assert graph.layers(diamond) == {"a": 0, "e": 0, "b": 1, "c": 1, "d": 2}
    drawing = graph.draw(diamond, badges={"b": ["2 files"]})
    assert not drawing.collapsed and len(drawing.edges) == 4
    assert next(n for n in drawing.nodes if n.id == "b").badges == ["2 files"]
    chain = [task("t0"), *(task(f"t{i}", f"t{i - 1}") for i in range(1, 5000))]
    big = graph.draw(chain)  # no recursion limit on a long chain
    assert big.collapsed and len(big.boxes) == 5000 and big.layers_of["t4999"] == 4999
    assert sum(b.total for b in big.boxes) == 5000


def test_a_large_swarm_is_drawn_by_layer(client: TestClient, sync_queue: TaskQueue) -> None:
    sync_queue.submit(
        {
            "tasks": [
                {"id": f"t{i}", "title": f"Task {i}", "dependencies": [f"t{i - 40}"] * (i >= 40)}
                for i in range(400)
            ]
        }
    )
    page = client.get(f"/swarm/{sync_queue.swarm}")
    assert page.status_code == 200
    assert 'data-collapsed="1"' in page.text and "collapsed: 10 layers" in page.text
    assert page.text.count('class="layer"') == 10 and 'data-task="t0"' not in page.text
    assert "layer 0: <tspan class=\"layer-total\">40</tspan> tasks" in page.text


def test_cli_refuses_a_taken_port_and_an_unreachable_redis(real_redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main, ["--redis-url", real_redis_url, "dashboard", "--port", str(port)]
        )
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"swarmqueue: cannot listen on 127.0.0.1:{port}")
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(
        main, ["--redis-url", nobody, "dashboard", "--port", str(free_port())],
        env={"SWARMQUEUE_RETRY_BUDGET_SECONDS": "0"},
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert result.output.startswith("swarmqueue: cannot reach Redis")


def test_pages_say_when_redis_cannot_be_read() -> None:
    gone = redis_from_url(f"redis://127.0.0.1:{free_port()}/0", 0)  # no retries
    with TestClient(create_app(gone, lambda: redis.asyncio.Redis(port=1))) as c:
        for path in ("/", "/swarm/x", "/metrics"):
            page = c.get(path)
            assert page.status_code == 503, path
            assert "Traceback" not in page.text


def test_file_reservations_show_on_the_drawing(client: TestClient, sync_queue: TaskQueue) -> None:
    sync_queue.submit(
        {
            "tasks": [
                {"id": "a", "title": "A", "files": ["src/auth/jwt.py", "src/auth/keys.py"]},
                {"id": "b", "title": "B", "files": ["src/auth/"]},
            ]
        }
    )
    claim = sync_queue.claim_next("bob")
    assert claim is not None and claim.task.id == "a"
    page = client.get(f"/swarm/{sync_queue.swarm}")
    assert page.status_code == 200
    assert "2 files reserved" in page.text  # on a: what its claim holds
    assert "files held by bob" in page.text  # on b: ready, waiting only for bob's files
