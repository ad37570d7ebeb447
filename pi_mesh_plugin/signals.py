"""How the long-running commands (``serve``, ``mcp``, ``feed --follow``) end on SIGTERM and SIGHUP.

Each is turned into the exception the command already handles for Ctrl-C, so the same ``finally`` blocks
leave the mesh and stop the watchers; :func:`ignore_term` keeps a second signal from interrupting that
clean-up.  The one place this is written.
"""

from __future__ import annotations

import signal

TERMINATING = (signal.SIGTERM, signal.SIGHUP)


def end_on_term(exc: type[BaseException] = KeyboardInterrupt) -> None:
    """Raise ``exc`` in the main thread when SIGTERM or SIGHUP arrives."""

    def handler(signum: int, frame: object) -> None:
        raise exc(0) if exc is SystemExit else exc()

    for sig in TERMINATING:
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread, or no such signal here
            pass


def ignore_term() -> None:
    """Ignore further SIGTERM/SIGHUP (while the command cleans up)."""
    for sig in TERMINATING:
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):
            pass
