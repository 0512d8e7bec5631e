"""What a Redis Cluster says while a slot moves or a master fails over is ridden out.

Driven against a stand-in for the cluster (no server): the refusals (TRYAGAIN, ASK/MOVED left
unsettled, CLUSTERDOWN, redis-py's "TTL exhausted") come before a command runs, so any call is
sent again within the budget, scripts without a request id included; a lost connection after
them still counts as a connection error; other cluster errors are the caller's. The loopback
cluster tests are in tests/test_cluster_migration.py (``-m cluster``).
"""

from __future__ import annotations

import asyncio

import pytest
import redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    RedisClusterException,
    TryAgainError,
)

from distributor import RedisUnavailable
from distributor.store.calls import RetryBudget, ScriptCall, perform_async, perform_sync
from distributor.store.keys import SwarmKeys, slot_guard
from distributor.store.scripts import MESSAGING_SCRIPT_NAMES, SCRIPT_NAMES, source
from tests.test_retry_budget import Flaky

WITHOUT_ID = ScriptCall("cancel", [], [])  # not safe to resend after a lost connection

REFUSALS = [
    TryAgainError("Multiple keys request during rehashing of slot"),
    AskError("3999 127.0.0.1:6381"),
    MovedError("3999 127.0.0.1:6381"),
    ClusterDownError("The cluster is down"),
    ClusterError("TTL exhausted."),
]


@pytest.mark.parametrize("error", REFUSALS, ids=lambda e: type(e).__name__)
def test_a_refusal_is_sent_again_even_without_request_id(error: Exception) -> None:
    flaky = Flaky(failures=3, error=error)
    assert perform_sync(WITHOUT_ID, flaky, RetryBudget(5)) == "reply"
    assert flaky.calls == 4
    flaky = Flaky(failures=3, error=error)
    assert asyncio.run(perform_async(WITHOUT_ID, flaky.aio, RetryBudget(5))) == "reply"


def test_refusals_past_the_budget_say_the_cluster_kept_refusing() -> None:
    with pytest.raises(RedisUnavailable, match="Redis Cluster kept refusing"):
        perform_sync(WITHOUT_ID, Flaky(10**6, TryAgainError("slot moving")), RetryBudget(0.3))


def test_a_lost_connection_after_refusals_is_not_resent_without_request_id() -> None:
    errors = [TryAgainError("slot moving"), redis.ConnectionError("reset"), None]

    def cluster(call: object) -> str:
        error = errors.pop(0)
        if error is not None:
            raise error
        return "reply"

    with pytest.raises(RedisUnavailable) as info:
        perform_sync(WITHOUT_ID, cluster, RetryBudget(5))
    assert info.value.request_id is None and errors == [None]  # it may have run: not resent


def test_no_reachable_node_is_a_connection_error_and_mistakes_are_raised() -> None:
    gone = RedisClusterException("Redis Cluster cannot be connected. Please provide ...")
    with pytest.raises(RedisUnavailable):
        perform_sync(WITHOUT_ID, Flaky(1, gone), RetryBudget(5))
    with_id = ScriptCall("complete", [], [], request_id="rid-1")
    assert perform_sync(with_id, Flaky(2, gone), RetryBudget(5)) == "reply"
    mistake = RedisClusterException("EVALSHA - all keys must map to the same key slot")
    flaky = Flaky(1, mistake)
    with pytest.raises(RedisClusterException):
        perform_sync(with_id, flaky, RetryBudget(5))
    assert flaky.calls == 1


def test_every_script_call_names_the_swarm_slot_guard() -> None:
    keys = SwarmKeys("s1")
    assert {slot_guard(k) for k in [*keys.script_keys(), keys.task("a:{b}"), keys.agent("x")]} == {
        keys.slot_guard
    }
    assert slot_guard(keys.host_swarms("h")) is None  # no hash tag: never in a script


def test_scripts_building_keys_carry_dragonflys_flag_line() -> None:
    for name in (*SCRIPT_NAMES, *MESSAGING_SCRIPT_NAMES):
        text = source(name)
        builds = "PREFIX .." in text
        assert text.startswith("--!df flags=allow-undeclared-keys\n") == builds, name
