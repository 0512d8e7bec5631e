"""What runs on each agent host: the delivery job (tmux, outcomes), the worker and its sweep."""
