"""Agents and messages: the registry, broadcasts with their per-recipient outcomes, the rate
limit, making text inert, and handing deliveries to the workers. May import
``distributor.tasks`` (ids and time helpers), ``distributor.store`` and the top-level modules.
"""
