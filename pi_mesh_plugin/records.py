"""The records the API hands out: agents, messages, reservations, blocks, tool calls.

On disk (and in PostgreSQL rows) a record is the JSON object its schema in
``schemas/`` describes; here it is a small read-only object with the same
field names, ``to_dict()`` giving the JSON form back.  They are plain slotted
classes rather than dataclasses because :class:`Block` and
:class:`Reservation` sit on the per-call guard path, where importing
``dataclasses`` (and ``inspect`` behind it) would cost more than the check.
"""

from __future__ import annotations

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self


class Record:
    __slots__: tuple[str, ...] = ()
    _optional: dict = {}

    def __init__(self, **fields: object) -> None:
        for name in self.__slots__:
            if name in fields:
                value = fields.pop(name)
            elif name in self._optional:
                value = self._optional[name]
            else:
                raise TypeError(f"{type(self).__name__} needs {name!r}")
            object.__setattr__(self, name, value)
        if fields:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(fields)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    @classmethod
    def from_dict(cls, d: dict) -> Self:
        """The record from the fields of ``d`` that it has (others are ignored); listing paths call this
        thousands of times, so it fills the slots directly rather than through ``__init__``."""
        obj = object.__new__(cls)
        setf = object.__setattr__
        optional = cls._optional
        for name in cls.__slots__:
            if name in d:
                setf(obj, name, d[name])
            elif name in optional:
                setf(obj, name, optional[name])
            else:
                raise TypeError(f"{cls.__name__} needs {name!r}")
        return obj

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    def replace(self, **changes: object) -> Self:
        d = self.to_dict()
        d.update(changes)
        return type(self)(**d)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(repr(getattr(self, k)) for k in self.__slots__))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({inner})"


class Agent(Record):
    """A registered agent.  ``live`` is computed when listed, not stored."""

    __slots__ = ("name", "session", "pid", "pid_start", "host", "boot_id", "cwd", "harness", "model",
                 "started", "last_seen", "status", "activity", "live")
    _optional = {"pid_start": None, "boot_id": None, "harness": None, "model": None, "status": None,
                 "activity": None, "live": None}
    name: str
    session: str
    pid: int
    pid_start: str | None
    host: str
    boot_id: str | None
    cwd: str
    harness: str | None
    model: str | None
    started: str
    last_seen: str
    status: str | None
    activity: dict | None
    live: bool | None


class Message(Record):
    """One message as one recipient holds it."""

    __slots__ = ("id", "sender", "to", "text", "urgent", "reply_to", "thread", "created", "broadcast", "meta",
                 "read")
    _optional = {"urgent": False, "reply_to": None, "thread": None, "broadcast": False, "meta": None, "read": None}
    id: str
    sender: str
    to: str
    text: str
    urgent: bool
    reply_to: str | None
    thread: str | None
    created: str
    broadcast: bool
    meta: dict | None
    read: bool | None

    @classmethod
    def from_record(cls, d: dict, read: bool | None = None) -> Message:
        obj = object.__new__(cls)  # read_inbox makes thousands: fill the slots directly
        setf = object.__setattr__
        setf(obj, "id", d["id"])
        setf(obj, "sender", d["from"])
        setf(obj, "to", d["to"])
        setf(obj, "text", d["text"])
        setf(obj, "urgent", d.get("urgent", False))
        setf(obj, "reply_to", d.get("reply_to"))
        setf(obj, "thread", d.get("thread"))
        setf(obj, "created", d["created"])
        setf(obj, "broadcast", d.get("broadcast", False))
        setf(obj, "meta", d.get("meta"))
        setf(obj, "read", read)
        return obj


class Reservation(Record):
    """A claim on a directory (everything beneath) or a single file, by ``holder``."""

    __slots__ = ("id", "holder", "session", "path", "kind", "reason", "created", "expires")
    _optional = {"session": None}
    id: str
    holder: str
    session: str | None
    path: str
    kind: str
    reason: str
    created: str
    expires: str

    def to_record(self) -> dict:
        return {"schema": 1, **self.to_dict()}

    def shown_path(self) -> str:
        return self.path + "/" if self.kind == "dir" and self.path != "." else self.path


class Queued(Record):
    """A place in the waiting line for claims (``reserve(..., queue=True)`` when the paths were taken).

    ``position`` counts from 1 (next to be granted); ``ahead`` are the waiters before it, ``holders`` the
    agents whose claims are in the way; ``text`` says all that in words for a model.
    """

    __slots__ = ("id", "agent", "paths", "reason", "queued", "position", "ahead", "holders", "text")
    id: str
    agent: str
    paths: list
    reason: str
    queued: str
    position: int
    ahead: list
    holders: list
    text: str


class Block(Record):
    """The answer of a guard that refuses a tool call.  ``message`` is what the model is shown."""

    __slots__ = ("tool", "path", "canonical", "holder", "reason", "since", "expires", "reservation_id", "message")
    _optional = {"path": None, "canonical": None, "holder": None, "reason": None, "since": None, "expires": None,
                 "reservation_id": None}
    tool: str
    path: str | None
    canonical: str | None
    holder: str | None
    reason: str | None
    since: str | None
    expires: str | None
    reservation_id: str | None
    message: str

    def __str__(self) -> str:
        return self.message


class ToolCall(Record):
    """A tool call as the core sees it, whatever harness it came from.

    ``tool`` is the mesh's name for the tool (``edit``, ``write``, ``bash``,
    ``read``, ``commit``, or a registered tool's name); ``paths`` are the file
    paths the call would write, as the harness gave them (relative to ``cwd``).
    ``input`` is the raw argument object, kept for plugins.  :attr:`writes` is
    what every guard checks: the ``(path, kind)`` pairs the call would write,
    computed once, when first asked for (for ``bash`` by parsing the command);
    a caller that knows them already (a commit's changed files) passes ``writes=``.
    ``via`` is set on the ``write`` calls that :func:`~pi_mesh_plugin.host.decide`
    derives from a call whose writes are not its own ``paths``: the tool they come
    from (``bash``, ``commit``), so a plugin that vetoes a write vetoes them too.
    """

    __slots__ = ("tool", "input", "paths", "agent", "cwd", "harness", "raw_tool", "via", "_writes", "_note",
                 "_rough")
    _optional = {"input": None, "paths": (), "agent": None, "cwd": None, "harness": None, "raw_tool": None,
                 "via": None, "_writes": None, "_note": None, "_rough": frozenset()}
    _derived = ("tool", "input", "paths", "cwd")  # a change of these makes the writes be computed again
    tool: str
    input: dict | None
    paths: tuple[str, ...] | list[str]
    agent: str | None
    cwd: str | None
    harness: str | None
    raw_tool: str | None
    via: str | None
    _writes: tuple[tuple[str, str], ...] | None
    _note: str | None
    _rough: frozenset

    def __init__(self, writes: object = None, **fields: object) -> None:
        if writes is not None:
            fields["_writes"] = tuple((str(p), str(k)) for p, k in writes)  # type: ignore[attr-defined]
        super().__init__(**fields)

    @property
    def writes(self) -> tuple[tuple[str, str], ...]:
        """``(path, kind)`` pairs (kind ``"file"`` or ``"dir"``) the call would write, relative to ``cwd``
        unless absolute.  A shell command's pairs come from :func:`pi_mesh_plugin.shell.shell_write_targets`."""
        if self._writes is None:
            object.__setattr__(self, "_writes", self._compute_writes())
        return self._writes  # type: ignore[return-value]

    @property
    def write_note(self) -> str | None:
        """Why some pairs are only a guess (a shell command that could not be parsed), else ``None``."""
        self.writes  # noqa: B018 - computes them
        return self._note

    @property
    def rough_writes(self) -> frozenset:
        """The pairs that are guessed (see :attr:`write_note`)."""
        self.writes  # noqa: B018 - computes them
        return self._rough

    def _compute_writes(self) -> tuple[tuple[str, str], ...]:
        if self.paths:
            return tuple((p, "file") for p in self.paths)
        command = (self.input or {}).get("command") if self.tool == "bash" else None
        if not isinstance(command, str):
            return ()
        from .shell import shell_write_targets

        targets = shell_write_targets(command)
        object.__setattr__(self, "_note", targets.note)
        object.__setattr__(self, "_rough", frozenset(targets.rough))
        return tuple(targets)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__ if not k.startswith("_")}

    def replace(self, **changes: object) -> ToolCall:
        d = self.to_dict()
        d.update(changes)
        if self._writes is not None and not any(k in changes for k in self._derived):
            d.update(_writes=self._writes, _note=self._note, _rough=self._rough)
        return ToolCall(**d)
