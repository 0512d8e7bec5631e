"""Nothing a message says can run as a command in a pane, whatever program is in its foreground.

The tmux tests run real programs on a private tmux server (``tmux -L sq-<id>``) whose panes
start in a temporary directory: ``bash --norc -i``, ``sh -i``, ``zsh -f`` (when installed),
``cat``, ``less`` and ``vi``. Hostile messages try to create files there; none may appear.
Each shell first proves it runs typed commands in that directory (``touch ready-<shell>``),
and after the deliveries proves it is back at a clean prompt (``touch done-<shell>``), so the
absence of the files is evidence, not an accident of timing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import redis
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from distributor.cli import main
from distributor.cli.app import CliContext
from distributor.messaging.agents import AgentRegistry
from distributor.messaging.messages import Messenger, format_line
from distributor.messaging.sanitize import SHELL_COMMENT_MAX_BYTES, shell_comment, strip_controls
from distributor.settings import DEFAULT_DELIVER_TO, Settings
from distributor.store.executor import SyncExecutor
from distributor.tasks.queue import TaskQueue
from distributor.testing import delete_swarm
from tests.conftest import make_client
from tests.messaging_support import (
    Messaging,
    delete_rq_keys,
    messaging_settings,
    run_worker,
    unique_host,
    wait_for,
)
from workers import tmux as tmux_module
from workers.delivery import deliver_message
from workers.programs import Refusal, Typing, decide

ZSH = shutil.which("zsh")
SHELLS = {"bash": ["bash", "--norc", "-i"], "sh": ["sh", "-i"]}
if ZSH:
    SHELLS["zsh"] = ["zsh", "-f"]  # -f: no rc files, so interactivecomments is off

# Each payload tries to run ``touch pwned-N`` in the pane's directory.
PAYLOADS = [
    "hi; touch {f}",
    "$(touch {f})",
    "`touch {f}`",
    "true && touch {f}",
    "hi\ntouch {f}",
    "\x1b[201~touch {f}\r\x1b[201~\ntouch {f}",  # paste end, then a command
    "'; touch {f}; echo '",  # closes a quote the comment might open
    "it'\\''s'; touch {f} #",
    "!! ; touch {f}",  # history expansion
    "a\rtouch {f}\x0btouch {f}\x0ctouch {f}\u2028touch {f}\u2029touch {f}\x85touch {f}",
    "\x03\x15\x04\x1a\x0f\x16\ttouch {f}",  # ^C ^U ^D ^Z ^O ^V, tab
]
AT = datetime(2025, 1, 1, tzinfo=UTC)


def hostile(token: str) -> list[tuple[str, str]]:
    """(marker, content) per payload, then a 4,000-character line (the most a message holds)
    ending in a command; the marker leads, so a comment cut short still shows it."""
    out = []
    for i, payload in enumerate(PAYLOADS):
        marker = f"M{i:02d}-{token}"
        out.append((marker, f"{marker} {payload.format(f=f'pwned-{i:02d}')}"))
    marker, tail = f"M{len(PAYLOADS)}-{token}", f"; touch pwned-{len(PAYLOADS)}"
    out.append((marker, f"{marker} {'x' * (4000 - len(marker) - len(tail) - 1)}{tail}"))
    return out


# --- the comment line, without tmux -----------------------------------------------------------

COMMENT_RE = re.compile(r"# '(?:[ -&(-~]|'\\'')*'")


@pytest.mark.parametrize(("marker", "content"), hostile("t"))
def test_comment_line_is_one_printable_quoted_word(marker: str, content: str) -> None:
    line = shell_comment(format_line("mallory", "INFO", AT, content))
    assert COMMENT_RE.fullmatch(line) and len(line) <= SHELL_COMMENT_MAX_BYTES
    (word,) = shlex.split(line[2:])  # what a shell that runs "#" as a command would get
    assert word.startswith(f"[mallory][2025-01-01 00:00:00 UTC][INFO]: {marker} ")
    full = len(strip_controls(format_line("mallory", "INFO", AT, content)))
    assert "touch pwned-" in word or word.endswith(f" ...[truncated, {full} chars]")


@given(st.text(max_size=3000))
def test_any_text_makes_one_inert_comment(text: str) -> None:
    line = shell_comment(text)
    assert COMMENT_RE.fullmatch(line) and len(line.encode()) <= SHELL_COMMENT_MAX_BYTES
    assert len(shlex.split(line[2:])) == 1


@pytest.mark.parametrize("shell", list(SHELLS))
def test_each_shell_reads_the_quoted_text_as_one_argument(shell: str, tmp_path: Path) -> None:
    """What zsh without interactivecomments (or a vi-mode ``#``) does with the line: run it."""
    for _, content in hostile("t"):
        line = shell_comment(format_line("mallory", "INFO", AT, content))
        done = subprocess.run(
            [
                SHELLS[shell][0],
                *(["-f"] if shell == "zsh" else []),
                "-c",
                "printf '%s' " + line[2:],
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout == shlex.split(line[2:])[0]
    assert not list(tmp_path.iterdir())


# --- which program gets what --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "skip", "comment"),
    [
        ("bash", "shell_prompt", Typing.COMMENT),
        ("-bash", "shell_prompt", Typing.COMMENT),  # a login shell, should tmux keep the dash
        ("/usr/bin/zsh", "shell_prompt", Typing.COMMENT),
        ("sh", "shell_prompt", Typing.COMMENT),
        ("dash", "shell_prompt", Typing.COMMENT),
        ("ksh", "shell_prompt", Typing.COMMENT),
        ("fish", "shell_prompt", "shell_prompt"),  # other quoting: never typed
        ("tcsh", "shell_prompt", "shell_prompt"),  # runs "#" lines at a prompt
        ("csh", "shell_prompt", "shell_prompt"),
        ("nu", "shell_prompt", "shell_prompt"),
        ("pwsh", "shell_prompt", "shell_prompt"),
        ("claude", Typing.PASTE, Typing.PASTE),
        ("2.1.112", Typing.PASTE, Typing.PASTE),  # Claude Code's native build
        ("node", Typing.PASTE, Typing.PASTE),
        ("python3.12", Typing.PASTE, Typing.PASTE),
        ("cat", Typing.PASTE, Typing.PASTE),
        ("less", "not_an_agent", "not_an_agent"),
        ("vi", "not_an_agent", "not_an_agent"),
        ("vim", "not_an_agent", "not_an_agent"),
        ("sudo", "not_an_agent", "not_an_agent"),
        ("", "not_an_agent", "not_an_agent"),
        ("claude}", "not_an_agent", "not_an_agent"),  # never compared inside a tmux format
    ],
)
def test_foreground_program_decides_what_is_typed(
    command: str, skip: Typing | str, comment: Typing | str
) -> None:
    modes: list[tuple[Literal["skip", "comment"], Typing | str]] = [
        ("skip", skip),
        ("comment", comment),
    ]
    for mode, expected in modes:
        got = decide(command, Settings(shell_panes=mode))
        assert (got.reason if isinstance(got, Refusal) else got) == expected, mode


def test_shells_keep_their_rule_even_when_allowed() -> None:
    settings = Settings(deliver_to=["bash", "*"])
    assert decide("bash", settings) == Refusal(
        "shell_prompt", "the pane's foreground program is the shell 'bash'; "
        "SWARMQUEUE_SHELL_PANES=skip",
    )  # fmt: skip
    assert decide("less", settings) is Typing.PASTE  # the operator allowed everything else


def test_allowlist_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().deliver_to == list(DEFAULT_DELIVER_TO)
    monkeypatch.setenv("SWARMQUEUE_DELIVER_TO", "claude, my-agent*")
    assert Settings().deliver_to == ["claude", "my-agent*"]
    monkeypatch.setenv("SWARMQUEUE_DELIVER_TO", "claude,a b")
    with pytest.raises(ValueError, match="not a program name"):
        Settings()
    monkeypatch.setenv("SWARMQUEUE_DELIVER_TO", "claude")
    monkeypatch.setenv("SWARMQUEUE_SHELL_PANES", "type")
    with pytest.raises(ValueError, match="shell_panes"):
        Settings()


def test_deliveries_command_shows_how_and_why(sync_queue: TaskQueue) -> None:
    ms = Messaging(sync_queue.redis, sync_queue.swarm)
    try:
        for agent, pane in (("ann", "%1"), ("bob", "%2"), ("cy", "%3")):
            ms.registry.register(agent, pane)
        message_id = ms.messenger.broadcast("hi; touch pwned", sender="mallory")
        outcomes: dict[str, dict[str, Any]] = {
            "ann": {"status": "delivered", "as": "comment"},
            "bob": {"status": "failed", "reason": "shell_prompt", "detail": "bash", "final": True},
            "cy": {"status": "failed", "reason": "not_an_agent", "detail": "less", "final": True},
        }
        SyncExecutor(sync_queue.redis).run(ms.messenger.ops.record(message_id, outcomes))
        obj = CliContext(ms.settings, sync_queue)
        shown = CliRunner().invoke(main, ["deliveries", message_id, "--json"], obj=obj)
        got = {d["agent_id"]: d for d in json.loads(shown.output)["deliveries"]}
        assert (got["ann"]["status"], got["ann"]["as"]) == ("delivered", "comment")
        assert (got["bob"]["reason"], got["cy"]["reason"]) == ("shell_prompt", "not_an_agent")
        text = CliRunner().invoke(main, ["deliveries", message_id], obj=obj).output
        assert "as comment" in text and "failed (shell_prompt): bash" in text
        assert "failed (not_an_agent): less" in text
    finally:
        ms.close()


# --- real programs in real panes ----------------------------------------------------------------


class ProgramLab:
    """A private tmux server (``tmux -L``) whose panes run real programs in ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        self.name = f"sq-{uuid.uuid4().hex[:12]}"
        self.tmp = tmp
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # the test's own folder: close() and the leak check look for the server there
            "TMUX_TMPDIR": os.environ.get("TMUX_TMPDIR", tempfile.gettempdir()),
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "LESSHISTFILE": "-",
        }
        self.panes: dict[str, str] = {}
        self.socket = ""

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.name, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
        )
        return done.stdout.strip()

    def start(self, name: str, argv: list[str]) -> str:
        where = ["-c", str(self.tmp), "-P", "-F", "#{pane_id}"]
        if self.panes:
            pane = self.tmux("new-window", "-d", *where, *argv)
        else:
            pane = self.tmux("new-session", "-d", "-x", "200", "-y", "50", *where, *argv)
            self.socket = self.tmux("display-message", "-p", "#{socket_path}")
        self.panes[name] = pane
        return pane

    def program(self, name: str) -> str:
        return self.tmux("display-message", "-p", "-t", self.panes[name], "#{pane_current_command}")

    def run(self, name: str, command: str) -> None:
        """Type ``command`` and Enter into a shell pane (the test's own input, not a message)."""
        self.tmux("send-keys", "-t", self.panes[name], "-l", command)
        self.tmux("send-keys", "-t", self.panes[name], "Enter")

    def prove_shell_runs(self, name: str, word: str) -> None:
        """The shell in pane ``name`` runs what is typed at its prompt, in ``tmp``."""
        self.run(name, f"touch {word}-{name}")
        wait_for((self.tmp / f"{word}-{name}").exists, what=f"{word}-{name}")

    def screen(self, name: str) -> str:
        """Everything the pane showed, wrapped lines joined."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", self.panes[name])

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.name, "kill-server"], capture_output=True, env=self.env, check=False
        )  # self.env: the server's folder even if the test undid its monkeypatches
        if self.socket:  # tmux 3.3 leaves the socket file of a killed server behind
            Path(self.socket).unlink(missing_ok=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[ProgramLab]:
    lab = ProgramLab(tmp_path)
    yield lab
    lab.close()


def start_programs(lab: ProgramLab) -> None:
    """Shells, ``cat``, ``less`` and ``vi``, each ready for input."""
    (lab.tmp / "page.txt").write_text("LESS-VIEW\n" * 5)
    (lab.tmp / "edit.txt").write_text("VI-VIEW\n")
    for name, argv in SHELLS.items():
        lab.start(name, argv)
    lab.start("cat", ["cat"])
    lab.start("less", ["less", "page.txt"])
    lab.start("vi", ["vi", "-u", "NONE", "-i", "NONE", "-n", "edit.txt"])
    for name in SHELLS:
        lab.prove_shell_runs(name, "ready")
    wait_for(lambda: lab.program("cat") == "cat", what="cat")
    wait_for(lambda: "LESS-VIEW" in lab.screen("less"), what="less")
    wait_for(lambda: "VI-VIEW" in lab.screen("vi"), what="vi")


class Swarm:
    def __init__(self, client: redis.Redis, swarm: str, **overrides: object) -> None:
        self.client = client
        self.host = unique_host()
        self.settings = messaging_settings(
            swarm, self.host, rate_limit_per_minute=1000, **overrides
        )
        self.registry = AgentRegistry(client, swarm, settings=self.settings)
        self.messenger = Messenger(client, swarm, settings=self.settings)

    def close(self) -> None:
        delete_swarm(self.messenger)  # type: ignore[arg-type]
        delete_rq_keys(self.client, self.host)
        self.client.close()


def pwned(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("pwned"))


@pytest.mark.slow
@pytest.mark.parametrize("keep_newlines", [False, True], ids=["one-line", "keep-newlines"])
@pytest.mark.parametrize("shell_panes", ["skip", "comment"])
def test_hostile_messages_run_nothing_in_any_pane(
    lab: ProgramLab,
    real_redis_url: str,
    swarm: str,
    monkeypatch: pytest.MonkeyPatch,
    shell_panes: str,
    keep_newlines: bool,
) -> None:
    monkeypatch.setenv("SWARMQUEUE_SHELL_PANES", shell_panes)  # read by the job's Settings()
    monkeypatch.setenv("SWARMQUEUE_MESSAGE_KEEP_NEWLINES", str(keep_newlines).lower())
    monkeypatch.delenv("SWARMQUEUE_DELIVER_TO", raising=False)  # the default allowlist
    sw = Swarm(redis.Redis.from_url(real_redis_url), swarm, message_keep_newlines=keep_newlines)
    try:
        start_programs(lab)
        for name, pane in lab.panes.items():
            sw.registry.register(name, pane, socket=lab.socket)
        messages = hostile(uuid.uuid4().hex[:10])
        assert len(messages[-1][1]) == sw.settings.message_max_chars == 4000
        ids = [sw.messenger.broadcast(content, sender="mallory") for _, content in messages]
        assert run_worker(sw.client, sw.host)
        for name in SHELLS:  # each shell took every line typed into it and is at its prompt
            lab.prove_shell_runs(name, "done")

        assert pwned(lab.tmp) == []
        for (marker, _), message_id in zip(messages, ids, strict=True):
            message = sw.messenger.get(message_id)
            line = format_line(
                message.sender, message.type, message.at, message.content, message.id
            )
            got = {d.agent_id: d for d in message.deliveries}
            for name in SHELLS:
                shown = lab.screen(name)
                if shell_panes == "comment":
                    assert (got[name].status, got[name].delivered_as) == ("delivered", "comment")
                    assert shell_comment(line) in shown  # the whole comment, on one line
                else:
                    assert (got[name].status, got[name].reason, got[name].final) == (
                        "failed",
                        "shell_prompt",
                        True,
                    )
                    assert marker not in shown
            assert (got["cat"].status, got["cat"].delivered_as) == ("delivered", "paste")
            assert marker in lab.screen("cat")
            for name in ("less", "vi"):
                assert (got[name].status, got[name].reason, got[name].final) == (
                    "failed",
                    "not_an_agent",
                    True,
                )
                assert marker not in lab.screen(name)
        assert "VI-VIEW" in lab.screen("vi") and "LESS-VIEW" in lab.screen("less")
        assert (lab.tmp / "edit.txt").read_text() == "VI-VIEW\n"
        for name in lab.panes:  # whatever was not typed is still in the inbox
            assert [e.message_id for e in sw.messenger.inbox(name, 50)] == ids
        assert pwned(lab.tmp) == []
    finally:
        sw.close()


@pytest.mark.slow
def test_the_payloads_do_run_when_typed_raw(lab: ProgramLab) -> None:
    """Control: the old behaviour (paste and Enter into a shell) runs the payloads."""
    lab.start("bash", SHELLS["bash"])
    lab.prove_shell_runs("bash", "ready")
    tmux = tmux_module.Tmux(lab.socket)
    pane = lab.panes["bash"]
    for i, (_, content) in enumerate(hostile("t")[:3]):  # "; ...", "$(...)" and backticks
        line = format_line("mallory", "INFO", AT, strip_controls(content))
        assert tmux.paste(line, {pane: "bash"}) == {pane: None}
        # the payload's `touch` is briefly the foreground: wait for the prompt before the next
        wait_for((lab.tmp / f"pwned-{i:02d}").exists, what=f"pwned-{i:02d}")
        wait_for(
            lambda: lab.tmux("display", "-p", "-t", pane, "#{pane_current_command}") == "bash",
            what="bash back at its prompt",
        )
    lab.prove_shell_runs("bash", "done")
    assert pwned(lab.tmp) == ["pwned-00", "pwned-01", "pwned-02"]


@pytest.mark.slow
def test_a_pane_that_became_a_shell_is_not_typed_into(
    lab: ProgramLab, backend: str, real_redis_url: str, swarm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing said an agent runs there; tmux checks again right before typing."""
    sw = Swarm(make_client(backend, real_redis_url), swarm, shell_panes="skip")
    try:
        pane = lab.start("bash", SHELLS["bash"])
        lab.prove_shell_runs("bash", "ready")
        sw.registry.register("carl", pane, socket=lab.socket)
        rows = tmux_module.Tmux(lab.socket).panes()
        stale = [dataclasses.replace(row, command="claude") for row in rows]
        monkeypatch.setattr(tmux_module.Tmux, "panes", lambda self: stale)
        message_id = sw.messenger.send("carl", "hi; touch pwned-1", sender="mallory")
        report = deliver_message(
            sw.client, swarm, message_id, sw.host, settings=sw.settings, final=False
        )
        assert report.retrying == 1 and report.retry_in_seconds is not None
        (d,) = sw.messenger.get(message_id).deliveries
        assert (d.status, d.reason, d.final) == ("failed", "foreground_changed", False)

        monkeypatch.undo()  # the retry lists the panes again and sees the shell
        deliver_message(sw.client, swarm, message_id, sw.host, settings=sw.settings, final=False)
        (d,) = sw.messenger.get(message_id).deliveries
        assert (d.status, d.reason, d.final, d.attempts) == ("failed", "shell_prompt", True, 2)
        lab.prove_shell_runs("bash", "done")
        assert pwned(lab.tmp) == [] and "touch pwned" not in lab.screen("bash")
    finally:
        sw.close()
