"""Agents over MCP: ``swarmqueue mcp`` serves one agent's loop as Model Context Protocol tools,
and ``swarmqueue prime`` briefs an agent at the start of a session.

Only :mod:`distributor.mcp.server` and :mod:`distributor.mcp.auth` import the ``mcp`` SDK (the
``mcp`` extra); the brief (:mod:`distributor.mcp.priming`) and the agent's session state
(:mod:`distributor.mcp.session`) do not, so ``swarmqueue prime`` works without it.
"""
