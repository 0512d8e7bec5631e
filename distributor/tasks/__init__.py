"""The task graph: models, the operations and queries on it, the sync and asyncio clients,
waiting for work and the event log. May import ``distributor.store`` and the top-level modules.
"""
