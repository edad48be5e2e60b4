"""Command line: a thin layer over the pipeline functions (`hwcodesign --help`).

`main` loads the commands (and with them the whole pipeline, a second or two) inside its own
Ctrl-C handling, so an interrupt while loading ends like one during a command: one line, exit 130.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from hwcodesign.cli.commands import main as run_command_line
    except KeyboardInterrupt:
        print("hwcodesign: interrupted", file=sys.stderr)
        return INTERRUPTED
    return run_command_line(argv)


__all__ = ["main"]
