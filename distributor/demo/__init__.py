"""``swarmqueue demo``: a whole swarm at work in one command (see :mod:`distributor.demo.run`).

Modules: ``redis_source`` (which Redis), ``session`` (the tmux session), ``agent`` (the scripted
agent loop in each pane), ``run`` (the orchestration), ``summary`` (what is shown at the end),
``cleanup`` (keys left on a shared Redis) and ``command`` (the CLI command).
"""
