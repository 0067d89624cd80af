"""What every ``python -m benchmark`` tool shares: exit codes and the one option spelling.

Exit codes (README, "Command-line tools"): 0 ok; 1 a regression found (check: regressed);
2 usage or input error (unknown option, unreadable or not comparable input; weights: a file
is missing, the same status as the run that lacks it). Options are written ``--name value``; ``name=value`` of a known option
is accepted with a note.
"""

from __future__ import annotations

import sys
from typing import Iterable

EXIT_OK = 0
EXIT_FOUND = 1  # a regression (check)
EXIT_USAGE = 2  # usage or input error: unknown option, unreadable or incomparable input, missing files


def option_style(argv: Iterable[str], options: Iterable[str], prog: str) -> list[str]:
    """Rewrite ``name=value`` of a known option to ``--name value`` (the one spelling), with a note.

    ``options``: option names without dashes (``datasets``, ``max_images``); ``-`` and ``_``
    are interchangeable. Anything else is passed through unchanged.
    """
    names = {o.replace("-", "_") for o in options}
    out: list[str] = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and not arg.startswith("-") and key.replace("-", "_") in names:
            print(f"note: {prog} options are written --{key} {value}; {arg} is accepted", file=sys.stderr)
            out += [f"--{key}", value]
        else:
            out.append(arg)
    return out
