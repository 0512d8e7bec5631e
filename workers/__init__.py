"""RQ jobs that run on each agent host: tmux delivery, outcomes, maintenance."""
