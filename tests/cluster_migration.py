"""Move one hash slot between two masters of a loopback cluster, step by step, as
``redis-cli --cluster reshard`` does: ``SETSLOT IMPORTING`` on the target, ``SETSLOT MIGRATING``
on the source, ``MIGRATE`` the slot's keys in batches, then ``SETSLOT NODE`` everywhere.

Split in steps so a test can hold the slot half-moved (:meth:`SlotMove.move_batch`) and look at
what clients see meanwhile.
"""

from __future__ import annotations

import time

from tests.redis_cluster import HOST, ClusterNode, LoopbackCluster

MIGRATE_TIMEOUT_MS = 5000


class SlotMove:
    """Moving ``slot`` from ``source`` to ``target`` (both masters of ``cluster``)."""

    def __init__(
        self, cluster: LoopbackCluster, slot: int, source: ClusterNode, target: ClusterNode
    ) -> None:
        self.cluster, self.slot, self.source, self.target = cluster, slot, source, target
        self.moved_keys = 0
        self.batches = 0

    def begin(self) -> None:
        """Mark the slot importing on the target, then migrating on the source."""
        source_id, target_id = self.cluster.node_id(self.source), self.cluster.node_id(self.target)
        with self.target.client() as target:
            target.execute_command("CLUSTER", "SETSLOT", self.slot, "IMPORTING", source_id)
        with self.source.client() as source:
            source.execute_command("CLUSTER", "SETSLOT", self.slot, "MIGRATING", target_id)

    def move_batch(self, size: int) -> int:
        """MIGRATE up to ``size`` of the slot's keys still on the source; how many moved."""
        with self.source.client(decode_responses=True) as source:
            keys = source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, size)
        self.move_keys(keys)
        return len(keys)

    def move_keys(self, keys: list[str]) -> None:
        """MIGRATE exactly ``keys`` (all on the source, in the slot) in one batch."""
        if not keys:
            return
        with self.source.client() as source:
            source.execute_command(
                "MIGRATE", HOST, self.target.port, "", 0, MIGRATE_TIMEOUT_MS, "KEYS", *keys
            )
        self.moved_keys += len(keys)
        self.batches += 1

    def finish(self) -> None:
        """Assign the slot to the target on the target, the source and every other master."""
        target_id = self.cluster.node_id(self.target)
        order = [self.target, self.source] + [
            node for node in self.cluster.masters() if node not in (self.target, self.source)
        ]
        for node in order:
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", self.slot, "NODE", target_id)

    def run(self, batch: int = 20, pause: float = 0.05) -> float:
        """The whole move, ``batch`` keys at a time with ``pause`` seconds between batches (so
        clients work against the half-moved slot); returns how many seconds it took."""
        started = time.monotonic()
        self.begin()
        while self.move_batch(batch):
            time.sleep(pause)
        self.finish()
        return time.monotonic() - started
