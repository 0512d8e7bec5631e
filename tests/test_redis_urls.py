"""Redis URLs and credentials: validated once at the boundary, never shown with a password.

Bad URLs exit 2, refused credentials exit 5 ("authentication failed", not "is it running?"), a
``rediss://`` URL at a plain port fails after the connect timeout with its own message (exit 3);
every error is one line without a traceback, and no password appears in any output.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from distributor.cli import main
from distributor.errors import (
    AuthenticationFailed,
    InvalidRedisUrl,
    RedisUnavailable,
    TlsHandshakeFailed,
    ValidationError,
)
from distributor.store.client import (
    MAX_BLOCK_SECONDS,
    block_limit,
    check_redis_url,
    redact_url,
    redis_from_url,
)
from distributor.tasks.aio import AsyncTaskQueue
from distributor.tasks.queue import TaskQueue
from tests.private_redis import PrivateRedis, one_line_error, private_redis, run_cli

SECRET = "Hunter2-not-for-logs"

GOOD_URLS = [
    "redis://127.0.0.1:6379/0",
    "redis://localhost",
    "redis://:pw@host:6380/15",
    "redis://user:pw@host/1?socket_timeout=2.5&socket_connect_timeout=1&client_name=agent-7",
    "redis://[::1]:6379/0",
    "redis://host/0?health_check_interval=0&socket_keepalive=true&max_connections=4",
    "rediss://host:6380/0?ssl_cert_reqs=none&ssl_ca_certs=/etc/ca.pem",
    "unix:///run/redis/redis.sock?db=2",
    "redis+sentinel://127.0.0.1:26379/mymaster",
    "redis+sentinel://s1:26379,s2:26380,[::1]/mymaster/3?socket_timeout=2",
    "redis+sentinel://:pw@s1/mymaster?sentinel_password=spw&sentinel_username=sentinel-user",
    "rediss+sentinel://s1:26379/mymaster/0?ssl_cert_reqs=none&sentinel_ssl=true",
    "redis+cluster://127.0.0.1:7000",
    "redis+cluster://user:pw@n1:7000,n2:7001,n3/0?socket_connect_timeout=1",
    "rediss+cluster://n1:7000?ssl_ca_certs=/etc/ca.pem",
]

BAD_URLS = {
    "": "empty",
    "notaurl": "no scheme",
    "127.0.0.1:6379": "no scheme",
    "http://127.0.0.1:6379/0": "unsupported scheme 'http'",
    "REDIS://host/0": "unsupported scheme",
    "redis+cluster://127.0.0.1:7000/1": "Redis Cluster has only database 0",
    "redis+cluster://n1:7000,n2:x": "the port must be a number from 1 to 65535",
    "redis+cluster://n1:7000,,n2": "is not host[:port]",
    "redis+cluster://n1:7000?sentinel_password=x": "unknown option 'sentinel_password'",
    "redis+cluster://n1?ssl_cert_reqs=none": "needs rediss+cluster://",
    "redis+sentinel://s1:26379": "name the master's service",
    "redis+sentinel://s1:26379/": "name the master's service",
    "redis+sentinel://s1:26379/my master": "spaces",
    "redis+sentinel://s1:26379/mymaster/x": "the database must be a number",
    "redis+sentinel://s1:26379/mymaster/0/1": "the database must be a number",
    "redis+sentinel://s1:0/mymaster": "the port must be a number from 1 to 65535",
    "redis+sentinel://s1/mymaster?sentinel_ssl=maybe": "must be true or false",
    "redis+shard://n1:7000": "unsupported scheme 'redis+shard'",
    "redis://h1:6379,h2:6379/0": "several hosts need redis+sentinel://",
    "redis://127.0.0.1:99999/0": "port must be a number from 1 to 65535",
    "redis://127.0.0.1:0/0": "port must be a number from 1 to 65535",
    "redis://127.0.0.1:port/0": "port must be a number from 1 to 65535",
    "redis://127.0.0.1:6379/0?socket_timeout=abc": "socket_timeout must be a positive number",
    "redis://127.0.0.1:6379/0?socket_timeout=-1": "socket_timeout must be a positive number",
    "redis://127.0.0.1:6379/0?socket_connect_timeout=inf": "must be a positive number",
    "redis://127.0.0.1:6379/0?db=x": "db must be a whole number",
    "redis://127.0.0.1:6379/zero": "the database must be a number",
    "redis://127.0.0.1:6379/0?colour=blue": "unknown option 'colour'",
    "redis://127.0.0.1:6379/0?ssl_cert_reqs=none": "needs rediss://",
    "rediss://127.0.0.1:6379/0?ssl_cert_reqs=maybe": "must be one of none, optional, required",
    "redis://127.0.0.1:6379/0?client_name=two words": "spaces",
    "redis://127.0.0.1:6379/0\n": "control characters",
    "unix://": "needs the socket's path",
}


@pytest.mark.parametrize("url", GOOD_URLS)
def test_good_urls_pass_unchanged(url: str) -> None:
    assert check_redis_url(url) == url


@pytest.mark.parametrize(("url", "why"), BAD_URLS.items())
def test_bad_urls_are_refused_with_one_clear_line(url: str, why: str) -> None:
    with pytest.raises(InvalidRedisUrl) as refused:
        check_redis_url(url)
    message = str(refused.value)
    assert isinstance(refused.value, ValidationError)
    assert message.startswith("invalid Redis URL ") and why in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        (f"redis://:{SECRET}@h:1/0", "redis://***@h:1/0"),
        (f"redis://alice:{SECRET}@h/0", "redis://***@h/0"),
        (f"rediss://alice:{SECRET}@h/0?ssl_cert_reqs=none", "rediss://***@h/0?ssl_cert_reqs=none"),
        (f"redis://a:p@ss{SECRET}@h/0", "redis://***@h/0"),  # an unescaped "@" in the password
        (f"unix://:{SECRET}@/run/redis.sock", "unix://***@/run/redis.sock"),
        (f"alice:{SECRET}@h:6379", "***@h:6379"),  # no scheme: still redacted
        (f"redis://h/0?password={SECRET}&db=1", "redis://h/0?password=***&db=1"),
        (f"rediss://h/0?ssl_password={SECRET}", "rediss://h/0?ssl_password=***"),
        (f"redis+sentinel://:{SECRET}@s1:26379,s2/m", "redis+sentinel://***@s1:26379,s2/m"),
        (
            f"redis+sentinel://s1/m?sentinel_password={SECRET}&db=1",
            "redis+sentinel://s1/m?sentinel_password=***&db=1",
        ),
        (f"redis+cluster://u:{SECRET}@n1:7000,n2:7001", "redis+cluster://***@n1:7000,n2:7001"),
    ],
)
def test_redact_url_hides_users_and_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert SECRET not in redact_url(url)


def test_bad_url_with_a_password_never_shows_it() -> None:
    for url in (f"redis://bob:{SECRET}@h:99999/0", f"redis://h:1/0?password={SECRET}&bad=1"):
        with pytest.raises(InvalidRedisUrl) as refused:
            check_redis_url(url)
        assert SECRET not in str(refused.value)


def test_every_from_url_validates() -> None:
    with pytest.raises(InvalidRedisUrl):
        TaskQueue.from_url("http://127.0.0.1:6379/0")
    with pytest.raises(InvalidRedisUrl):
        AsyncTaskQueue.from_url("redis://127.0.0.1:99999/0")
    with pytest.raises(InvalidRedisUrl):
        redis_from_url("notaurl", 3)


def test_the_socket_timeout_is_explicit_and_bounds_blocking_reads() -> None:
    """Ours, whatever redis-py's default (none before 8, 5 s in 8); a URL option overrides it."""
    client = redis_from_url("redis://127.0.0.1:6379/0", 3)
    assert client.get_connection_kwargs()["socket_timeout"] == 10.0
    assert block_limit(client) == MAX_BLOCK_SECONDS
    for socket_timeout, longest in ((0.4, 0.15), (1, 0.5), (0.1, 0.01)):
        short = redis_from_url(f"redis://127.0.0.1:6379/0?socket_timeout={socket_timeout}", 3)
        assert block_limit(short) == pytest.approx(longest)


@pytest.mark.parametrize(("url", "why"), list(BAD_URLS.items())[1:8])
def test_cli_bad_url_exits_2_with_one_line(url: str, why: str) -> None:
    result = CliRunner().invoke(main, ["--redis-url", url, "status"], catch_exceptions=False)
    assert result.exit_code == 2
    line = one_line_error(result.stderr)
    assert line.startswith("swarmqueue: invalid Redis URL") and why in line
    assert result.stdout == ""


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://s1:26379",
        f"redis+sentinel://:{SECRET}@s1:26379/m/x",
        "redis+cluster://n1:7000/2",
        f"redis+cluster://u:{SECRET}@n1:port",
        "redis+shard://n1:7000",
    ],
)
def test_cli_bad_sentinel_or_cluster_url_exits_2(url: str) -> None:
    result = CliRunner().invoke(main, ["--redis-url", url, "status"], catch_exceptions=False)
    assert result.exit_code == 2
    line = one_line_error(result.stderr)
    assert line.startswith("swarmqueue: invalid Redis URL") and SECRET not in line


def test_cli_bad_url_in_the_environment_exits_2_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWARMQUEUE_REDIS_URL", f"redis://bob:{SECRET}@127.0.0.1:99999/0")
    result = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "redis://***@127.0.0.1:99999/0" in one_line_error(result.stderr)
    assert SECRET not in result.output


def test_cli_unreachable_message_redacts_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARMQUEUE_RETRY_BUDGET_SECONDS", "0.3")
    url = f"redis://bob:{SECRET}@127.0.0.1:1/0"
    result = CliRunner().invoke(main, ["--redis-url", url, "status"], catch_exceptions=False)
    assert result.exit_code == 3
    line = one_line_error(result.stderr)
    assert line.startswith("swarmqueue: cannot reach Redis at redis://***@127.0.0.1:1/0")
    assert SECRET not in result.output


# -- a server with a password ----------------------------------------------------------------


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[PrivateRedis]:
    """A private redis-server that requires the password ``SECRET``."""
    with private_redis(["--port", "{port}", "--requirepass", SECRET]) as server:
        yield server


def test_cli_wrong_password_exits_5_and_never_shows_it(locked_redis: PrivateRedis) -> None:
    port = locked_redis.port
    for url, detail in (
        (f"redis://:wrong-{SECRET}@127.0.0.1:{port}/0", "invalid username-password pair"),
        (f"redis://alice:{SECRET}@127.0.0.1:{port}/0", "invalid username-password pair"),
        (f"redis://127.0.0.1:{port}/0", "Authentication required"),
    ):
        commands = [["status"], ["next", "--agent", "a", "--wait", "5"], ["events", "-f"]]
        for command in commands if "wrong" in url else commands[:1]:
            done, _ = run_cli("--redis-url", url, "--swarm", "auth-test", *command)
            assert done.returncode == 5, (command, done.stderr)
            line = one_line_error(done.stderr)
            assert line.startswith(f"swarmqueue: authentication failed at Redis {redact_url(url)}")
            assert detail in line and "is it running" not in line
            assert SECRET not in done.stdout + done.stderr
    good = f"redis://:{SECRET}@127.0.0.1:{port}/0"
    done, _ = run_cli("--redis-url", good, "--swarm", "auth-test", "status", "--json")
    assert done.returncode == 0 and SECRET not in done.stdout + done.stderr


def test_library_wrong_password_raises_authentication_failed(locked_redis: PrivateRedis) -> None:
    url = f"redis://:wrong@127.0.0.1:{locked_redis.port}/0"
    with pytest.raises(AuthenticationFailed) as refused:
        TaskQueue.from_url(url, "auth-test").progress()
    assert isinstance(refused.value, RedisUnavailable)  # still caught as "Redis unusable"

    async def use_async() -> None:
        async with AsyncTaskQueue.from_url(url, "auth-test") as queue:
            await queue.progress()

    with pytest.raises(AuthenticationFailed):
        asyncio.run(use_async())
    # A client built without our retry policy gets the same error at the boundary.
    bare = TaskQueue(redis.Redis.from_url(f"redis://127.0.0.1:{locked_redis.port}/0"), "x")
    with pytest.raises(AuthenticationFailed):
        bare.progress()


# -- TLS against a plain port, and a real TLS server -----------------------------------------


def test_cli_rediss_against_a_plain_port_fails_at_the_handshake(
    locked_redis: PrivateRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"rediss://:{SECRET}@127.0.0.1:{locked_redis.port}/0"
    done, seconds = run_cli("--redis-url", url, "--swarm", "tls-test", "status")
    assert done.returncode == 3
    line = one_line_error(done.stderr)
    assert line.startswith("swarmqueue: cannot reach Redis at rediss://***@127.0.0.1:")
    assert "TLS handshake with 127.0.0.1:" in line and "use redis:// for a plain port" in line
    assert SECRET not in done.stdout + done.stderr
    with capsys.disabled():
        print(f"\n[rediss:// at a plain port: CLI exit 3 after {seconds:.1f}s]")


def test_library_tls_handshake_is_bounded_by_the_connect_timeout(
    locked_redis: PrivateRedis,
) -> None:
    """A socket timeout of 30 s does not apply to the handshake: the 1 s connect timeout does."""
    url = f"rediss://127.0.0.1:{locked_redis.port}/0?socket_connect_timeout=1&socket_timeout=30"
    with pytest.raises(TlsHandshakeFailed, match=r"no answer within 1s"):
        TaskQueue.from_url(url, "tls-test").progress()

    async def use_async() -> None:
        async with AsyncTaskQueue.from_url(url, "tls-test") as queue:
            await queue.progress()

    with pytest.raises(TlsHandshakeFailed, match=r"no answer within 1s"):
        asyncio.run(use_async())


def _tls_files(where: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (made with openssl)."""
    ca_key, ca, key, csr, cert, ext = (
        where / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "x.cnf")
    )
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for args in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "1", "-subj", "/CN=swarmqueue-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "1", "-extfile", ext],
    ):  # fmt: skip
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    return ca, cert, key


def test_a_real_tls_server_works_and_an_untrusted_one_is_told_apart(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test's certificates")
    ca, cert, key = _tls_files(tmp_path)
    args = [
        "--port", "0", "--tls-port", "{port}", "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
    ]  # fmt: skip
    trusted = f"rediss://127.0.0.1:{{port}}/0?ssl_ca_certs={ca}"
    server = PrivateRedis(args, url=trusted)
    try:
        server.start()
    except AssertionError as exc:  # did not start: its log is in the message
        server.close()
        if "tls" not in str(exc).lower():
            raise
        pytest.skip("this redis-server was built without TLS")
    with contextlib.closing(server):
        # A read longer than the socket timeout, over TLS, sync and asyncio.
        short = server.url + "&socket_timeout=0.4"
        queue = TaskQueue.from_url(short, "tls-test")
        assert queue.events("$", wait=1.0) == []

        async def use_async() -> None:
            async with AsyncTaskQueue.from_url(short, "tls-test") as aqueue:
                assert await aqueue.events("$", wait=1.0) == []

        asyncio.run(use_async())
        untrusted = server.url.split("?")[0]
        done, _ = run_cli("--redis-url", untrusted, "--swarm", "tls-test", "status")
        assert done.returncode == 3
        line = one_line_error(done.stderr)
        assert "TLS handshake" in line and "certificate" in line and "ssl_ca_certs" in line
