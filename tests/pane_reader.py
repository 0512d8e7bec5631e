"""A stand-in for an agent program in a tmux pane, for the delivery tests.

Like agent programs, it asks the terminal for bracketed paste (``ESC[?2004h``) and reads its
tty in raw mode; it appends every byte it receives to the log file named by ``argv[1]``, so
tests can assert exactly what was typed. It prints ``READY`` once the mode is on: when tmux
shows that word, tmux has already seen the mode switch printed before it.
"""

from __future__ import annotations

import os
import sys
import tty


def main() -> None:
    log_path = sys.argv[1]
    fd = sys.stdin.fileno()
    tty.setraw(fd)
    os.write(sys.stdout.fileno(), b"\x1b[?2004hREADY")
    with open(log_path, "ab", buffering=0) as log:
        while True:
            data = os.read(fd, 65536)
            if not data:
                return
            log.write(data)


if __name__ == "__main__":
    main()
