#!/usr/bin/env python3
"""The dashboard's speed goals: a 10,000-task swarm page renders in under 1 s, and an event
reaches an open page in under 500 ms at p99, however many pages watch.

Usage: .venv/bin/python scripts/bench_dashboard.py [--redis-url URL] [--tasks N] [--pages N]
                                                   [--events N] [--json]

Starts a private redis-server on a free loopback port (unless ``--redis-url``), submits a
layered DAG of ``--tasks`` tasks (100 per layer, each depending on two tasks of the layer
before) and completes a third of them. Then:

- render: ``GET /swarm/<name>`` through the app (Redis reads, layout, template), 5 times;
- latency: the app served by uvicorn on loopback, ``--pages`` event streams open (each what a
  browser's EventSource reads), then ``--events`` tasks completed one by one, 20 ms apart;
  each event's latency is from the moment ``complete()`` returned to the moment a page's
  stream delivered it (one host, one monotonic clock); and the Redis calls the feed made.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import redis
import uvicorn
from starlette.testclient import TestClient

from benchmarks.server import PrivateRedis, free_port
from distributor.dashboard.app import create_app
from distributor.dashboard.server import DashboardServer
from distributor.log import configure_logging
from distributor.settings import Settings
from distributor.store.client import async_redis_from_url
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm

WIDTH = 100


def plan(n: int) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        layer, pos = divmod(i, WIDTH)
        deps = [] if layer == 0 else sorted({f"t{(layer - 1) * WIDTH + pos}",
                                             f"t{(layer - 1) * WIDTH + (pos * 7 + 3) % WIDTH}"})
        tasks.append({"id": f"t{i}", "title": f"Task {i} of the benchmark", "dependencies": deps})
    return {"tasks": tasks}


def complete_some(queue: TaskQueue, count: int) -> None:
    claim = queue.claim_next("bench")
    done = 0
    while claim is not None and done < count:
        result = queue.complete(claim.task_id, "bench", claim.token, claim_next=True)
        claim = result.next
        done += 1
    if claim is not None:
        queue.release(claim.task_id, "bench", claim.token)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    port = free_port()
    server = DashboardServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                            timeout_graceful_shutdown=1))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(url: str, tasks: int, pages: int, events: int) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    swarm = f"bench-dash-{uuid.uuid4().hex[:8]}"
    queue = TaskQueue(client, swarm, settings=Settings(announce_claims=False))
    try:
        queue.submit(plan(tasks))
        complete_some(queue, tasks // 3)
        app = create_app(client, lambda: async_redis_from_url(url, 1), Settings())
        renders, cpu, size = [], [], 0
        with TestClient(app) as tc:
            for _ in range(5):
                start, start_cpu = time.perf_counter(), time.process_time()
                page = tc.get(f"/swarm/{swarm}")
                renders.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
                assert page.status_code == 200
                size = len(page.content)

        done_at: dict[str, float] = {}
        seen: list[list[tuple[str, float]]] = [[] for _ in range(pages)]
        ready = threading.Barrier(pages + 1)
        stop = threading.Event()

        def reader(i: int, base: str) -> None:
            with httpx2.stream("GET", f"{base}/swarm/{swarm}/stream", timeout=30) as response:
                lines = response.iter_lines()
                next(lines)  # ": connected"
                ready.wait()
                for line in lines:
                    if line.startswith("data: "):
                        now = time.monotonic()
                        for e in json.loads(line[6:])["events"]:
                            if e["type"] == "completed":
                                seen[i].append((e["task"], now))
                    if stop.is_set():
                        return

        with serve(app) as base:
            threads = [threading.Thread(target=reader, args=(i, base)) for i in range(pages)]
            for t in threads:
                t.start()
            ready.wait()
            time.sleep(0.5)  # the feed's reader is in its blocking read
            hub = app.app.state.hub  # type: ignore[attr-defined]
            feed = hub.feeds[swarm]
            reads_before, updates_before = feed.reads, feed.updates
            events_before = client.xlen(queue.keys.events)
            for _ in range(events):
                claim = queue.claim_next("bench")
                assert claim is not None
                queue.complete(claim.task_id, "bench", claim.token)
                done_at[claim.task_id] = time.monotonic()
                time.sleep(0.02)
            time.sleep(1.0)
            reads, updates = feed.reads - reads_before, feed.updates - updates_before
            stream_events = client.xlen(queue.keys.events) - events_before
            stop.set()
            for _ in range(pages):  # one more event wakes every reader to see stop
                claim = queue.claim_next("bench")
                if claim is not None:
                    queue.complete(claim.task_id, "bench", claim.token)
            for t in threads:
                t.join(timeout=10)
        latencies = [
            (at - done_at[task]) * 1000 for page in seen for task, at in page if task in done_at
        ]
        return {
            "tasks": tasks,
            "render_seconds": {"median": statistics.median(renders), "max": max(renders)},
            "render_cpu_seconds": {"median": statistics.median(cpu), "max": max(cpu)},
            "page_bytes": size,
            "pages": pages,
            "events": events,
            "deliveries": len(latencies),
            "latency_ms": {
                "p50": percentile(latencies, 0.5),
                "p99": percentile(latencies, 0.99),
                "max": max(latencies),
            },
            "feed_redis_calls": reads,
            "feed_updates": updates,
            "stream_events": stream_events,  # claims and completions
            "feed_redis_calls_per_update": reads / max(updates, 1),
        }
    finally:
        delete_swarm(queue)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--redis-url")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=25)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    configure_logging("WARNING", "auto")
    if args.redis_url:
        result = measure(args.redis_url, args.tasks, args.pages, args.events)
    else:
        with PrivateRedis() as url:
            result = measure(url, args.tasks, args.pages, args.events)
    if args.json:
        print(json.dumps(result))
    else:
        r, c, lat = result["render_seconds"], result["render_cpu_seconds"], result["latency_ms"]
        print(f"swarm page, {result['tasks']} tasks: median {r['median']:.3f} s, "
              f"max {r['max']:.3f} s (this process' CPU: median {c['median']:.3f} s), "
              f"{result['page_bytes']:,} bytes (goal < 1 s)")  # fmt: skip
        print(f"event to {result['pages']} open pages, {result['deliveries']} deliveries: "
              f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms "
              f"(goal p99 < 500 ms)")  # fmt: skip
        print(f"feed's Redis calls: {result['feed_redis_calls']} for {result['stream_events']} "
              f"events in {result['feed_updates']} updates "
              f"({result['feed_redis_calls_per_update']:.2f} per update, whatever the pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
