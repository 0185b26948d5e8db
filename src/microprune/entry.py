"""The console script. Ctrl-C while the program is still loading (click, the pipeline) must not
print a traceback: until the CLI's own handling is in place, an interrupt just ends the run."""
from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def main() -> int:
    signal.signal(signal.SIGINT, _interrupted_while_loading)
    signal.signal(signal.SIGTERM, _interrupted_while_loading)
    from .cli import main as run_cli       # the heavy imports

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return run_cli()


def _interrupted_while_loading(signum: int, _frame: FrameType | None) -> None:
    # nothing has been written yet: say so and leave at once (no clean-up is pending)
    os.write(2, b"microprune: interrupted; nothing was written\n")
    os._exit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
