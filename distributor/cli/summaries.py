"""Each lazily loaded command's help summary, so ``swarmqueue --help`` lists the commands
without importing their modules (tests/test_cli_startup.py checks these against the commands;
a command missing here is imported to show its line, as before)."""

SUMMARIES = {
    'ack': (
        'Acknowledge MESSAGE_IDS sent to you (it stops their re-delivery), in order. '
        'Acknowledging again changes nothing; a message not sent to you, or unknown, is '
        'refused (exit 1; the ones before it stay acknowledged).'
    ),
    'add': 'Add a task to the live swarm, atomically; prints its id and where it stands.',
    'agents': 'Register agents (tmux panes) and see who is present.',
    'broadcast': "Send TEXT ('-' reads stdin) to agents' panes; prints the message id at once.",
    'cancel': 'Operator: stop an unfinished TASK_ID (it becomes failed until retried).',
    'claim': 'Claim TASK_ID (exit 1 with the reason when refused).',
    'dashboard': (
        'Serve the read-only web dashboard of every swarm in this Redis (Ctrl-C stops '
        'it).'
    ),
    'deliveries': (
        "Show each recipient's outcome of MESSAGE_ID (delivered, failed and why, typing, "
        'pending), or with --pending every message whose recipients are not all final.'
    ),
    'demo': 'Watch a swarm of scripted agents build a feature, end to end, on a fresh swarm.',
    'done': (
        'Mark TASK_ID completed; prints the tasks it made available (and, with --next, '
        'your next claim: `--json` gives {"completed": ..., "next": task with token, or '
        'null}).'
    ),
    'events': "Print the swarm's event log, oldest first (JSON lines with --json).",
    'fail': 'Report a held TASK_ID as failed; it is retried while attempts remain.',
    'guard': 'A git pre-commit hook refusing commits that touch files other agents reserved.',
    'heartbeat': 'Renew the lease of a held TASK_ID (exit 1 if the claim was lost).',
    'inbox': 'Read your latest messages (kept even if your pane was closed), oldest first.',
    'mcp': (
        "Serve AGENT's loop (next task, start, heartbeat, complete, fail, release, "
        'status, tasks, messages) as Model Context Protocol tools: stdio by default, for '
        'an agent CLI to launch; with --http, streamable HTTP at http://HOST:PORT/mcp for'
        ' agents on other hosts, which then need the bearer token. Needs the mcp extra: '
        "pip install 'swarmqueue[mcp]'."
    ),
    'metrics': (
        "Print every swarm's metrics once, as /metrics shows them (Prometheus text "
        'format).'
    ),
    'next': (
        'Claim the best ready task (exit 1 when none is ready, or none became ready in '
        '--wait).'
    ),
    'plan': 'Submit and inspect plans (sets of tasks with dependencies).',
    'prime': (
        'Brief AGENT for a new session: its loop, its claims and lease left, its unread '
        "messages and the swarm's progress (use it as a session-start hook)."
    ),
    'ratelimit': (
        "See or reset a sender's message rate limit (rate_limit_per_minute per "
        'rate_limit_window_seconds).'
    ),
    'reap': 'Operator: return every task whose lease expired to the queue.',
    'redispatch': (
        'Make sure every message not yet delivered has a live delivery job (MESSAGE_IDS, '
        'or every message in the outboxes): a job that is gone or abandoned is replaced, '
        'a queued or running one is left alone. Workers do this by themselves every few '
        'seconds; this queues the jobs of a host whose worker is down (they run when it '
        'starts), or shows what the workers do.'
    ),
    'release': 'Hand a held TASK_ID back unfinished (not counted as a failure).',
    'reservations': (
        'Who holds which paths, until when (live reservations, soonest to expire first).'
    ),
    'reserve': (
        'Reserve PATHS (files, dir/ or globs) for your agent; exit 1 naming the holders '
        'when another agent holds any of them (then nothing is reserved).'
    ),
    'retry': 'Operator: give a failed TASK_ID a fresh start.',
    'send': "Send TEXT ('-' reads stdin) to AGENT_ID (even if stale); prints the message id.",
    'start': 'Mark a held TASK_ID in progress (renews the lease).',
    'status': 'Progress of the swarm: counts per status, and which failed tasks block others.',
    'swarm': 'Manage one whole swarm.',
    'swarms': 'List every swarm in this Redis with its progress, agents and last activity.',
    'task': 'Show one task with its state.',
    'tasks': 'List tasks in submission order, a page at a time (--after the last id for the next).',
    'unreserve': 'Free your explicit reservations of PATHS (none given: all of them).',
    'watch': "Show the swarm's progress live until every task is completed or failed.",
    'worker': "Run the RQ worker that types messages into this host's tmux panes.",
}  # fmt: skip
