"""The error hierarchy.

Every error the mesh raises on purpose is a :class:`MeshError`, each on the
builtin it behaves like (a bad name is a ``ValueError``, a store that cannot be
read is an ``OSError``), so callers may catch either.  Each carries the exit
code the CLI uses and a one-line message fit to show a person or a model.

Exit codes: 0 ok, 1 error, 2 usage, 3 blocked or refused.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3
CLIP = 200  # characters of an argument (a path, a name, an op) an error message repeats


def clip(value: object, limit: int = CLIP) -> str:
    """``value`` (a string as it is, anything else as its ``repr``) cut to ``limit`` characters, saying
    how long it was: an error repeats what it was given, never a megabyte of it."""
    s = value if isinstance(value, str) else repr(value)
    return s if len(s) <= limit else f"{s[:limit]}... ({len(s)} characters)"


class MeshError(Exception):
    """Base of every deliberate pi_mesh_plugin error."""

    exit_code = EXIT_ERROR

    def __str__(self) -> str:  # one line, always
        return " ".join(str(self.args[0]).split()) if self.args else self.__class__.__name__


class UsageError(MeshError, ValueError):
    """Bad input from the caller: an invalid name, path, duration or argument."""

    exit_code = EXIT_USAGE


class InvalidName(UsageError):
    """A name (agent, inbox, reservation or message id) that is not allowed."""

    def __init__(self, kind: str, name: object) -> None:
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        super().__init__(
            f"invalid {kind} {shown}: use 1-64 characters from A-Z a-z 0-9 _ -, starting with a letter or digit"
        )
        self.kind = kind
        self.name = name


class NotJoined(UsageError):
    """The operation needs an agent identity and none was given."""


class UnknownAgent(MeshError, LookupError):
    """A message to, or an operation on, an agent that is not registered."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no agent named {name!r} is registered in this mesh (see `pi-mesh agents`)")
        self.name = name


class LiveAgent(MeshError):
    """Refused: the agent whose claims should be released is still live (message it instead)."""

    exit_code = EXIT_BLOCKED


class NameTaken(MeshError):
    """Another live agent already holds the name."""

    exit_code = EXIT_BLOCKED

    def __init__(self, name: str, pid: int | None, host: str | None) -> None:
        super().__init__(f"the name {name!r} is held by a live agent (pid {pid} on {host}); choose another name")
        self.name = name


class TooLarge(UsageError):
    """A message or field past its size limit."""


class SendRefused(MeshError):
    """A send refused by a governor (rate, repeat, broadcast cap, ping-pong loop); nothing was delivered.

    ``rule`` is the hooks.toml key, ``retry_after`` the ISO time from which the same send may pass."""

    exit_code = EXIT_BLOCKED

    def __init__(self, message: str, rule: str, retry_after: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.retry_after = retry_after


class OutsideProject(UsageError):
    """A reservation of a path that is not inside the project."""


class ReservationConflict(MeshError):
    """A reservation overlapping a live claim of another agent; nothing was claimed.

    ``conflicts`` lists the other agents' reservations in the way.
    """

    exit_code = EXIT_BLOCKED

    def __init__(self, message: str, conflicts: list) -> None:  # list[Reservation]
        super().__init__(message)
        self.conflicts = conflicts


class WaitCycle(ReservationConflict):
    """Queueing would close a waiting cycle (each agent waiting for the next one's claim); nothing was queued.

    ``cycle`` names the agents, the asker first and last.
    """

    def __init__(self, message: str, cycle: list[str]) -> None:
        super().__init__(message, [])
        self.cycle = cycle


class ToolDenied(MeshError, PermissionError):
    """A tool the configuration denies to this agent."""

    exit_code = EXIT_BLOCKED


class ConfigError(UsageError):
    """An invalid hooks.toml: names the file, the key and what was expected."""


class StoreError(MeshError, OSError):
    """The store could not be read or written."""


class CorruptRecord(StoreError):
    """A file or row that fails to parse or validate against its schema."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")
        self.where = where
        self.why = why


class SymlinkRefused(StoreError):
    """An entry of ``.pi/mesh`` (or ``.pi/mesh`` itself) is a symlink the mesh did not make: never followed."""

    def __init__(self, where: str) -> None:
        super().__init__(f"{where} is a symlink, which the mesh never follows (nothing was read or written "
                         f"through it); run `pi-mesh doctor` for how to repair it")
        self.where = where
