"""Process-group guard for an external command: no orphan outlives srbench.

Usage: ``python external_guard.py <srbench pid> bash -c <command>``. srbench starts this guard as
the leader of a new session (so of a new process group); the guard starts the command in that
same group and waits for it. When srbench dies in any way, SIGKILL included (no handler of its own
can run then), the guard sees its parent change and kills the whole group, the command's children
(the repository's python, its data-loader workers) with it. It also kills the group when it gets
SIGTERM/SIGINT/SIGHUP itself. The guard exits with the command's exit status.

Standalone on purpose: it imports nothing from srbench, so it starts fast and cannot fail on an
import error of the package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

POLL_S = 0.1  # how often the parent is checked: an orphan lives at most this long


def _kill_group(*_: object) -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)  # kills this guard too


def main(argv: list[str]) -> int:
    parent = int(argv[0])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _kill_group)
    child = subprocess.Popen(argv[1:])
    while True:
        try:
            return child.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            if os.getppid() != parent:  # srbench is gone: re-parented to init or a subreaper
                _kill_group()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
