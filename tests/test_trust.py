"""The README's multi-host setup works as written: Redis over TLS only, with the ACL users of
``docs/redis-users.acl`` (the lines the README shows).

A private redis-server listens on TLS only (``--port 0``), with a CA and a server certificate
made here by ``openssl``. The agent loop runs through the CLI as ``swarmqueue-agent`` (plan,
claims, a waiting agent, done/fail, messages) and ``swarmqueue worker`` as ``swarmqueue-worker``
types the messages into a real pane. Redis must refuse none of their commands (its ACL LOG stays
empty), and must refuse those users every key and channel outside swarmqueue's and RQ's, admin
commands, plain TCP, a client that does not trust the CA, and a wrong password.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

from distributor.demo.redis_source import free_port
from distributor.store.keys import SwarmKeys
from tests.messaging_support import TmuxLab, unique_host, wait_for
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ACL_FILE = ROOT / "docs" / "redis-users.acl"
CLI = Path(sys.executable).with_name("swarmqueue")
USERS = ("swarmqueue-agent", "swarmqueue-worker")


def documented_acl() -> dict[str, str]:
    """user name -> its line in docs/redis-users.acl."""
    lines = [line for line in ACL_FILE.read_text().splitlines() if line.startswith("user ")]
    return {line.split()[1]: line for line in lines}


def make_certs(folder: Path) -> dict[str, Path]:
    """A self-signed CA, and a server certificate it signed for 127.0.0.1 (SAN)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make the test certificates (apt-get install openssl)"
    ca_key, ca, key, cert = (folder / n for n in ("ca.key", "ca.pem", "server.key", "server.pem"))
    csr, ext = folder / "server.csr", folder / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    new_key = ["-newkey", "rsa:2048", "-nodes", "-days", "2"]
    sign = ["-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-extfile", str(ext)]
    for args in (
        ["req", "-x509", *new_key, "-subj", "/CN=test CA", "-keyout", str(ca_key), "-out", str(ca)],
        ["req", *new_key, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr)],
        ["x509", "-req", "-in", str(csr), *sign, "-days", "2", "-out", str(cert)],
    ):
        subprocess.run([openssl, *args], capture_output=True, check=True, timeout=60)
    return {"ca": ca, "key": key, "cert": cert}


def command(client: redis.Redis, *args: str) -> Any:
    """One raw command (redis-py leaves ``execute_command`` untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


@dataclass
class TlsRedis:
    """The TLS-only server, its CA, and the passwords given to the documented users."""

    server: RedisServer
    ca: Path
    passwords: dict[str, str]

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """A ``rediss://`` URL as the README gives it: user, password, and the CA to trust."""
        auth = ""
        if user:
            auth = f"{quote(user, safe='')}:{quote(password or self.passwords[user], safe='')}@"
        ca = quote(str(self.ca), safe="")
        return f"rediss://{auth}127.0.0.1:{self.server.port}/0?ssl_ca_certs={ca}"

    def admin(self) -> redis.Redis:
        """The test's own connection as ``default`` (all rights; production disables it)."""
        return redis.Redis.from_url(self.url())


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    folder = tmp_path_factory.mktemp("tls-redis")
    certs = make_certs(folder)
    acl = folder / "users.acl"  # the test's admin, then the documented file as it is
    acl.write_text("user default on nopass ~* &* +@all\n" + ACL_FILE.read_text())
    port = free_port()
    server = RedisServer(
        folder / "data",
        "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", str(certs["cert"]), "--tls-key-file", str(certs["key"]),
        "--tls-ca-cert-file", str(certs["ca"]), "--tls-auth-clients", "no",
        "--aclfile", str(acl),
        port=port, plain=False,
    )  # fmt: skip
    server.start()
    tls = TlsRedis(server, certs["ca"], {u: secrets.token_urlsafe(24) for u in USERS})
    admin = tls.admin()
    for user, password in tls.passwords.items():
        command(admin, "ACL", "SETUSER", user, "on", f">{password}")
    admin.close()
    yield tls
    server.stop()


@pytest.fixture
def admin(tls_redis: TlsRedis) -> Iterator[redis.Redis]:
    client = tls_redis.admin()
    client.acl_log_reset()
    yield client
    client.close()


def refused(admin: redis.Redis) -> list[str]:
    """What Redis refused since the log was reset, one line each."""
    found = []
    for entry in admin.acl_log():
        e = {str(k): (v.decode() if isinstance(v, bytes) else v) for k, v in entry.items()}
        found.append(f"{e['username']}: {e['reason']} {e['object']} ({e['context']})")
    return found


class Cli:
    """``swarmqueue`` as a subprocess connected as one user."""

    def __init__(self, url: str, swarm: str, host: str) -> None:
        self.env = {
            **os.environ,
            "SWARMQUEUE_REDIS_URL": url,
            "SWARMQUEUE_SWARM": swarm,
            "SWARMQUEUE_HOST": host,
            "SWARMQUEUE_LOG_FORMAT": "json",
        }

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen([str(CLI), *args], env=self.env, text=True, **kwargs)

    def __call__(self, *args: str) -> str:
        """Run it; its stdout. It must succeed, with no traceback and no refusal on stderr."""
        done = subprocess.run(
            [str(CLI), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"swarmqueue {' '.join(args)}: {done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr and "NOPERM" not in done.stderr, done.stderr
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))


PLAN = {
    "tasks": [
        {"id": "design", "title": "Design"},
        {"id": "api", "title": "API", "dependencies": ["design"]},
        {"id": "docs", "title": "Docs", "dependencies": ["design"]},
    ]
}


def test_the_readme_shows_the_acl_users_as_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    lines = documented_acl()
    assert set(lines) == set(USERS)
    for line in lines.values():
        assert line in readme, f"README.md lacks this line of {ACL_FILE.name}: {line[:60]}..."


@pytest.mark.long  # ~30 s of CLI processes: runs with -m long (CI)
def test_agent_loop_and_worker_over_tls_with_the_documented_users(
    tls_redis: TlsRedis, admin: redis.Redis, tmp_path: Path
) -> None:
    swarm, host = f"trust-{uuid.uuid4().hex[:8]}", unique_host()
    agent = Cli(tls_redis.url("swarmqueue-agent"), swarm, host)
    lab = TmuxLab(tmp_path)
    worker: subprocess.Popen[str] | None = None
    worker_log = tmp_path / "worker.stderr"
    waiting: subprocess.Popen[str] | None = None
    try:
        (pane,) = lab.spawn(1)
        (tmp_path / "plan.json").write_text(json.dumps(PLAN))
        agent("plan", "submit", str(tmp_path / "plan.json"))
        agent("agents", "register", "--agent", "alice", "--pane", pane, "--socket", lab.socket)
        assert agent.json("next", "--agent", "alice")["id"] == "design"
        agent("start", "design", "--agent", "alice")
        agent("heartbeat", "design", "--agent", "alice")

        # bob waits for work: subscribed to the swarm's channel as the agent user
        waiting = agent.popen(
            "next", "--agent", "bob", "--wait", "60", "--json", stdout=subprocess.PIPE
        )
        channel = SwarmKeys(swarm).channel
        wait_for(
            lambda: dict(admin.pubsub_shardnumsub(channel)).get(channel.encode(), 0) >= 1,
            timeout=30,
            what="bob to subscribe",
        )
        clients = admin.client_list()
        assert any(c["user"] == "swarmqueue-agent" and c.get("ssub") == "1" for c in clients)

        done = agent.json("done", "design", "--agent", "alice", "--next")
        assert done["completed"]["unblocked"] == ["api", "docs"]
        alice_next = done["next"]["id"]
        bob_out, _ = waiting.communicate(timeout=60)
        bob_next = json.loads(bob_out)["id"]
        assert {alice_next, bob_next} == {"api", "docs"}
        agent("done", bob_next, "--agent", "bob")
        # the operator's side: a failed task retried, claimed, handed back, finished
        agent("fail", alice_next, "--agent", "alice", "--reason", "stuck", "--no-retry")
        agent("retry", alice_next)
        agent("claim", alice_next, "--agent", "carol")
        agent("release", alice_next, "--agent", "carol")
        assert agent.json("next", "--agent", "carol")["id"] == alice_next
        agent("done", alice_next, "--agent", "carol")
        assert agent.json("status")["completed"] == 3
        agent("watch")  # returns at once: everything is done
        for args in (["reap"], ["tasks"], ["task", "design"], ["plan", "show"]):
            agent(*args)
        agent("agents", "list")
        agent("agents", "heartbeat", "--agent", "alice")
        follow = agent.popen("events", "--follow", "--json", stdout=subprocess.PIPE)
        assert follow.stdout is not None
        first = json.loads(follow.stdout.readline())  # read with XREAD, then it blocks
        follow.kill()
        follow.communicate()
        assert first["type"] == "submitted"
        agent("plan", "feature", "Add JWT authentication to FastAPI app")
        agent("cancel", agent.json("tasks", "--status", "available")[0]["id"])
        agent("send", "alice", "a word for alice", "--sender", "bob", "--ack")  # acks: worker
        message_id = agent("broadcast", "hello over TLS", "--sender", "bob").strip()
        assert agent.json("inbox", "--agent", "alice")[-1]["content"] == "hello over TLS"
        # the operator's view: both messages wait for this host's worker, their jobs queued
        pending = agent.json("deliveries", "--pending")
        assert {p["message_id"] for p in pending} >= {message_id}
        assert {r["action"] for r in agent.json("redispatch")} == {"queued"}

        # the delivery worker, as its own user, types every message into alice's pane
        worker_cli = Cli(tls_redis.url("swarmqueue-worker"), swarm, host)
        with worker_log.open("w") as err:
            worker = worker_cli.popen(
                "worker", stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
            )
        try:
            wait_for(
                lambda: agent.json("deliveries", message_id)["counts"]["delivered"] == 1,
                timeout=60,
                what="the broadcast to be delivered",
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; refused: {refused(admin)}; worker: {worker_log.read_text()[-3000:]}"
            ) from None
        wait_for(lambda: agent.json("deliveries", "--pending") == [], what="no pending message")
        received = lab.wait_received(pane, 1).decode(errors="replace")
        assert "a word for alice" in received and "hello over TLS" in received
        worker.terminate()
        assert worker.wait(timeout=60) == 0, worker_log.read_text()[-2000:]
        worker_err = worker_log.read_text()
        assert "Traceback" not in worker_err and "NOPERM" not in worker_err, worker_err[-2000:]
        worker_cli("worker", "--burst")  # the other way to run it: non-blocking pops
    finally:
        if waiting is not None and waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)  # and anything it left
            worker.wait()
        lab.close()
    assert refused(admin) == []


@pytest.mark.parametrize("user", USERS)
def test_the_users_reach_nothing_else(tls_redis: TlsRedis, admin: redis.Redis, user: str) -> None:
    admin.set("other:secret", "x")
    client = redis.Redis.from_url(tls_redis.url(user))
    try:
        assert client.get("swarmqueue:{trust}:clock") is None  # its own keys: allowed
        for args in (
            ("GET", "other:secret"),
            ("SET", "other:secret", "y"),
            ("DEL", "other:secret"),
            ("KEYS", "*"),
            ("SCAN", "0"),
            ("FLUSHALL",),
            ("CONFIG", "GET", "*"),
            ("ACL", "LIST"),
            ("SHUTDOWN",),
            ("EVAL", "return 1", "0"),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                command(client, *args)
        # a script it may load and run still cannot reach other keys
        sha = client.script_load("return redis.call('GET', 'other:secret')")
        with pytest.raises(redis.ResponseError, match="can't access at least one of the keys"):
            client.evalsha(sha, 0)
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        with pytest.raises(redis.exceptions.NoPermissionError):
            pubsub.subscribe("other-channel")
            pubsub.get_message(timeout=1)
        pubsub.close()
    finally:
        client.close()
    assert admin.get("other:secret") == b"x"
    admin.delete("other:secret")


def test_no_plain_tcp_no_unknown_ca_no_wrong_password(tls_redis: TlsRedis) -> None:
    port = tls_redis.server.port
    for url in (
        f"redis://127.0.0.1:{port}/0",  # plain TCP to the TLS port
        f"rediss://127.0.0.1:{port}/0",  # TLS, but the server's CA is not trusted
    ):
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
            client.ping()
        client.close()
    wrong = redis.Redis.from_url(tls_redis.url("swarmqueue-agent", password="not-the-password"))
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    wrong.close()
