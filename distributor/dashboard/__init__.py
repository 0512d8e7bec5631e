"""The operator's dashboard: read-only web pages of every swarm, live updates, and /metrics.

``swarmqueue dashboard`` serves :func:`distributor.dashboard.app.create_app` with uvicorn
(:mod:`distributor.dashboard.server`); ``swarmqueue metrics`` prints what ``/metrics`` shows.
"""
