"""The sections of ``scripts/bench.py``: one module per workload (lifecycle, cost growth,
memory, wake-up, broadcast, recovery) and per peer (RQ, BullMQ), plus the shared process,
server and report helpers."""
