"""The loopback Redis Cluster the fixtures start: what other cluster tests rely on."""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from tests.redis_cluster import SLOTS, LoopbackCluster, slot_of

pytestmark = pytest.mark.cluster


def test_cluster_serves_every_slot_from_three_masters(redis_cluster: LoopbackCluster) -> None:
    assert len(redis_cluster.masters()) == 3
    assert redis_cluster.url == "redis+cluster://" + ",".join(
        url.removeprefix("redis://") for url in redis_cluster.urls
    )
    client = redis_cluster.client(decode_responses=True)
    try:
        slots = client.cluster_slots(target_nodes=RedisCluster.RANDOM)
        covered = sum(last - first + 1 for first, last, *_ in slots)
        assert covered == SLOTS
        key = "sq-fixture:{a}:x"
        client.set(key, "1", ex=30)
        owner = redis_cluster.owner(key)
        with owner.client(decode_responses=True) as node:
            assert node.get(key) == "1"  # the key lives on the master that owns its slot
        assert slot_of(key) == key_slot(key.encode())
        client.delete(key)
    finally:
        client.close()
