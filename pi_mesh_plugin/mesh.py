"""The Python API: one :class:`Mesh` per (project, agent).

Everything else - the built-in plugin's tools, the CLI, the sidecar, the
hook commands, the MCP server - is a thin layer over this class.  It does
what depends on the local machine (finding the project, canonicalising paths
against this checkout, detecting case folding, identifying the owner
process) and leaves atomicity and liveness to the store backend.

Which project: ``root=`` (``--root``), else ``$PI_MESH_ROOT``, else the git
top level of the working directory, else the working directory.  There is
never a global directory: relative reservations of two projects cannot meet.

Which agent: ``agent=`` (``--agent``), else ``$PI_MESH_AGENT``, else
``[mesh] agent`` in hooks.toml.  A caller with no agent can still ``check``
(against every claim) but not send, reserve or read mail.
"""

from __future__ import annotations

import os

from . import paths as P
from .clock import format_duration, iso, new_id, now, parse_iso
from .config import AgentConfig, load_config
from .errors import (
    LiveAgent,
    NotJoined,
    OutsideProject,
    ReservationConflict,
    TooLarge,
    UnknownAgent,
    UsageError,
    clip,
)
from .liveness import boot_id, pid_ns, process_start, this_host
from .mailbox import MAX_TEXT  # noqa: F401 - re-exported
from .names import check_joinable, validate_name
from .records import Agent, Block, Message, Queued, Reservation

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .host import PluginHost
    from .store.base import Store

MAX_REASON = 1000


def find_root(root: str | None = None, cwd: str | None = None) -> str:
    """The project root (see the module docstring)."""
    if root:
        if not os.path.isdir(root):
            raise UsageError(f"--root {clip(root)} is not a directory")
        return os.path.abspath(root)
    env = os.environ.get("PI_MESH_ROOT")
    if env:
        if not os.path.isdir(env):
            raise UsageError(f"PI_MESH_ROOT={clip(env)} is not a directory")
        return os.path.abspath(env)
    from .projects import repo_top

    start = os.path.abspath(cwd or os.getcwd())
    return repo_top(start) or start  # a stray .git (not a repository) is no boundary


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class Mesh:
    """Presence, messages and reservations for one agent in one project."""

    _host: PluginHost  # its plugin host, set by PluginHost.for_mesh when first needed

    def __init__(self, root: str | None = None, agent: str | None = None, *, config: AgentConfig | None = None,
                 config_path: str | None = None, store: Store | None = None, cwd: str | None = None) -> None:
        self.cwd = os.path.abspath(cwd or os.getcwd())
        self.root = find_root(root, self.cwd)
        self.root_real = P.normalise_root(self.root)
        if not _within(P.normalise_root(self.cwd), self.root_real):
            self.cwd = self.root  # a caller outside the project named by --root: relative paths are the project's
        self.local_dir = os.path.join(self.root, ".pi", "mesh")  # this checkout's files (and caches)
        name = agent or os.environ.get("PI_MESH_AGENT") or None
        self.config = config or load_config(self.root, name, config_path)
        if not name and self.config.default_agent:
            name = self.config.default_agent
            if config is None:  # [agents.<name>] applies to the default agent too
                self.config = load_config(self.root, name, config_path)
        self.agent: str | None = validate_name(name) if name else None
        if store is None:
            from .store import open_store

            store = open_store(self.config.store_url, self.root, heartbeat_ttl=self.config.heartbeat_ttl,
                               project_id=self.config.project_id, timeouts=self.config.store_timeouts,
                               share=self.config.share)
        self.store = store
        # the store's time: the server's for PostgreSQL, so claims and heartbeats agree across machines
        self.now = store.now
        self.session: str | None = None
        self._owner: int | None = None
        self._casefold: bool | None = None
        self.notices: list[str] = []

    @classmethod
    def open(cls, root: str | None = None, agent: str | None = None, **kw: object) -> Mesh:
        return cls(root, agent, **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- identity -----------------------------------------------------------
    def _need_agent(self) -> str:
        if not self.agent:
            raise NotJoined("no agent name: pass --agent NAME, set PI_MESH_AGENT, or join first")
        return self.agent

    def join(self, name: str | None = None, *, harness: str | None = None, model: str | None = None,
             pid: int | None = None, status: str | None = None) -> Agent:
        """Register this agent.  ``pid`` is the owner process (default: this process's parent if the
        caller is a short-lived CLI, else this process; ``0`` for heartbeat-only liveness)."""
        name = check_joinable(generated_name() if name is None and not self.agent else
                              (self.agent if name is None else name), harness or self.config.harness)
        owner = os.getpid() if pid is None else int(pid)
        t = iso(self.now())
        # joining again from the same Mesh, same owner, while still live keeps the session (a heartbeat-only
        # agent, pid 0, has no owner process to recognise it by and was refused its own name); after its
        # death, or with another owner, it is a new session: the old claims never come back
        session = new_id()
        if self.session and name == self.agent and owner == self._owner:
            cur = self.store.get_agent(name)
            if cur is not None and cur["session"] == self.session and self.store.is_live(cur):
                session = self.session
        rec = {"schema": 1, "name": name, "session": session, "pid": owner,
               "pid_start": process_start(owner) if owner else None, "host": this_host(), "boot_id": boot_id(),
               "pid_ns": pid_ns() if owner else None,
               "cwd": self.cwd, "harness": harness or self.config.harness, "model": model, "started": t,
               "last_seen": t}
        if status:
            rec["status"] = status
        _check_fields("agent", rec, "cannot join")
        res = self.store.register(rec)
        self.agent, self.session, self._owner = name, res["agent"]["session"], owner
        from .mailbox import join_notices

        self.notices = join_notices(self, name, res)
        from .sandbox import fallback_notice

        unsandboxed = fallback_notice(self)
        if unsandboxed:
            self.notices.append(unsandboxed)
        self._feed("join", harness=rec["harness"], pid=owner, replaced=res.get("replaced"))
        return Agent.from_dict({**res["agent"], "live": True})

    def leave(self) -> bool:
        name = self._need_agent()
        gone = self.store.unregister(name, self.session)
        if gone:
            self._feed("leave")
        return bool(gone)

    def heartbeat(self, **changes: object) -> Agent | None:
        """Refresh ``last_seen`` and merge ``changes`` (``status``, ``activity``, ``model``)."""
        name = self._need_agent()
        _check_fields("agent", {"schema": 1, "name": name, "session": "s", "pid": 0, "host": "h", "cwd": "/",
                                "started": iso(0), "last_seen": iso(0), **changes}, "invalid heartbeat")
        rec = self.store.update_agent(name, self.session, {"last_seen": iso(self.now()), **changes})
        if rec:
            from .leases import upkeep

            upkeep(self, active=False)  # waiters get what expired or died; own claims near expiry are warned
        return Agent.from_dict({**rec, "live": True}) if rec else None

    def touch_activity(self) -> None:
        """This agent is working (a guarded call): renew its claims that run short, up to ``max_reservation``.

        Cheap when nothing is due: one look at the claims, no write.  See :mod:`pi_mesh_plugin.leases`."""
        from .leases import upkeep

        upkeep(self, active=True)

    def after_allowed_write(self, targets: list[tuple[str, str]], cwd: str | None = None) -> None:
        """What the decision path calls once a guarded write is allowed: :meth:`touch_activity`, then
        :meth:`auto_claim` of the written files (canonicalised here).  Never fails the call."""
        if not self.agent:
            return
        try:
            self.touch_activity()
            if self.config.auto_claim:
                keys = [self.canonical(p, cwd) for p, kind in targets if kind == P.FILE]
                self.auto_claim([k for k in keys if k is not None])
        except (OSError, UsageError):
            pass  # renewal and auto-claims are upkeep: the allowed write goes ahead regardless

    def auto_claim(self, canonical_paths: list[str]) -> list[Reservation]:
        """After an allowed guarded write: claim (or renew) these files for ``auto_claim_ttl`` when the agent's
        configuration has ``auto_claim = true``; nothing otherwise.  See :mod:`pi_mesh_plugin.leases`."""
        if not self.config.auto_claim or not self.agent:
            return []
        from .leases import auto_claim

        return auto_claim(self, canonical_paths)

    def me(self) -> Agent | None:
        rec = self.store.get_agent(self._need_agent())
        return Agent.from_dict({**rec, "live": self.store.is_live(rec)}) if rec else None

    def agents(self, include_dead: bool = True) -> list[Agent]:
        out = []
        for rec in self.store.list_agents():
            live = self.store.is_live(rec)
            if live or include_dead:
                out.append(Agent.from_dict({**rec, "live": live}))
        return out

    # -- messages -----------------------------------------------------------
    def send(self, to: str, text: str, urgent: bool = False, reply_to: str | None = None) -> Message:
        """Deliver ``text`` to ``to``, durably, before returning.  Refused (:class:`SendRefused`, nothing
        delivered) by the governors of :mod:`pi_mesh_plugin.limits`; see :mod:`pi_mesh_plugin.mailbox`."""
        from .mailbox import send

        return send(self, to, text, urgent, reply_to)

    def broadcast(self, text: str, urgent: bool = False) -> list[Message]:
        """One message (one shared id) to every live agent but the sender (governed like :meth:`send`)."""
        from .mailbox import broadcast

        return broadcast(self, text, urgent)

    def read_inbox(self, unread_only: bool = True, peek: bool = False, *, via: str | None = None) -> list[Message]:
        """Messages in id (= arrival) order.  Unless ``peek``, unread ones are then marked read.

        Reading never deletes: a read message stays in ``cur/``.  Without
        ``peek`` the messages are marked read *before* this returns, so a
        reader killed after that but before acting on them finds them only
        among the read ones (``unread_only=False``): at-most-once processing
        (the torture suite measures it).  For at-least-once processing,
        ``peek=True`` then :meth:`mark_read` the ids once handled; after a
        crash the same messages (same ids) come again - de-duplicate by id.  ``via`` names the adapter
        that puts them into the model's context (see :meth:`mark_read`).
        """
        name = self._need_agent()
        got = self.store.fetch(name, unread_only)
        msgs = [Message.from_record(r, read=was_read) for r, was_read in got]
        if not peek:
            unread = [m.id for m in msgs if not m.read]
            if unread:
                self.mark_read(unread, via=via)
        return msgs

    def mark_read(self, ids: list[str], *, via: str | None = None) -> int:
        """Mark these messages read.  ``via`` names the adapter that put them into the model's context
        (``pi``, ``tool``, ``cli``, ``claude-code``, ``codex``, ``gemini``): their "shown" receipt."""
        if via is not None:
            validate_name(via, "adapter name")
        return self.store.mark_read(self._need_agent(), [validate_name(i, "message id") for i in ids], via)

    def receipts(self, ids: list[str] | None = None, limit: int | None = None) -> list[dict]:
        """What became of this agent's messages: delivered, read, shown (via, when), answered, set aside
        (one row per message and recipient; see :mod:`pi_mesh_plugin.receipts`)."""
        from .receipts import receipts

        return receipts(self, None if ids is None else [validate_name(i, "message id") for i in ids], limit)

    def orphaned(self) -> list[tuple[str, Message]]:
        """``[(old session, message)]``: unread mail of earlier sessions of this name, set aside (see :meth:`adopt`)."""
        return [(s, Message.from_record(r, read=False)) for s, r in self.store.fetch_orphaned(self._need_agent())]

    def adopt(self, sessions: list[str] | None = None) -> int:
        """Take the set-aside mail of earlier sessions of this name (these, or all) as unread mail."""
        name = self._need_agent()
        n = self.store.adopt(name, None if sessions is None else [validate_name(s, "session") for s in sessions])
        if n:
            self._feed("adopt", count=n, sessions=sessions)
        return n

    def unread_count(self, name: str | None = None) -> int:
        return self.store.unread_count(name or self._need_agent())

    # -- paths --------------------------------------------------------------
    @property
    def casefold(self) -> bool:
        if self._casefold is None:
            probe = os.path.join(self.root, ".pi", "mesh")
            self._casefold = P.detect_case_insensitive(probe if os.path.isdir(probe) else self.root)
        return self._casefold

    def canonical(self, path: str, cwd: str | None = None) -> str | None:
        """The canonical project-relative form of ``path`` (``None`` outside the project)."""
        try:
            return P.canonicalise(path, cwd or self.cwd, self.root_real, self.casefold)
        except ValueError as e:
            raise UsageError(str(e)) from None

    def _claim_kind(self, given: str, canonical: str, cwd: str | None) -> str:
        if canonical == P.ROOT or given.endswith("/") or given.endswith("/."):
            return P.DIR
        full = os.path.join(self.root, canonical)
        if os.path.isdir(full):
            return P.DIR
        # the canonical form is NFC; the directory on disk may be spelled NFD (made on macOS): ask that
        # spelling and the path as given, read the way canonicalise() reads it
        if not canonical.isascii():
            import unicodedata

            if os.path.isdir(os.path.join(self.root, unicodedata.normalize("NFD", canonical))):
                return P.DIR
        return P.DIR if os.path.isdir(os.path.join(cwd or self.cwd, P.as_given(given))) else P.FILE

    # -- reservations -------------------------------------------------------
    def _wanted(self, paths: list[str] | str, reason: str, ttl: float | str | None,
                cwd: str | None) -> tuple[str, dict, list[tuple[str, str]], float]:
        """Validate a reservation request: ``(agent, its record, [(canonical path, kind)], ttl seconds)``."""
        from .clock import parse_duration

        name = self._need_agent()
        if isinstance(paths, str):
            paths = [paths]
        if not paths:
            raise UsageError("nothing to reserve: give at least one path")
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError("a reservation needs a reason (others will read it)")
        if len(reason) > MAX_REASON:
            raise TooLarge(f"reason is {len(reason)} characters; the limit is {MAX_REASON}")
        try:
            seconds = parse_duration(ttl) if ttl is not None else self.config.reservation_ttl
        except ValueError as e:
            raise UsageError(str(e)) from None
        me = self.store.get_agent(name)
        if me is None or not self.store.is_live(me):
            raise NotJoined(f"{name} is not a live agent of this mesh: run `pi-mesh join` first")
        wanted = []
        for p in paths:
            c = self.canonical(p, cwd)
            if c is None:
                raise OutsideProject(f"cannot reserve {clip(p)}: it is outside the project {self.root}")
            wanted.append((c, self._claim_kind(p, c, cwd)))
        return name, me, wanted, seconds

    def reserve(self, paths: list[str] | str, reason: str, ttl: float | str | None = None,
                cwd: str | None = None, queue: bool = False) -> list[Reservation] | Queued:
        """Claim directories (everything beneath) or files; all or nothing.

        Raises :class:`~pi_mesh_plugin.errors.ReservationConflict` naming each
        holder when any path overlaps another agent's live claim.  With
        ``queue=True`` the caller instead joins the waiting line for those paths
        and gets a :class:`~pi_mesh_plugin.records.Queued` at once; when the
        claims in the way are released, expire or their holders die, the first
        live waiter is granted the paths and told by an urgent message from
        ``mesh`` (see :mod:`pi_mesh_plugin.store.queue_rules`).  Queueing that
        would close a waiting cycle raises :class:`~pi_mesh_plugin.errors.WaitCycle`.
        """
        name, me, wanted, seconds = self._wanted(paths, reason, ttl, cwd)
        try:
            made = self.store.claim(name, me["session"], wanted, reason.strip(), seconds)
        except ReservationConflict as e:
            if not queue:
                e.conflicts = [Reservation.from_dict(r) for r in e.conflicts]
                self._feed("refused", paths=[c for c, _ in wanted], holders=sorted({r.holder for r in e.conflicts}))
                raise
            res = self.store.enqueue(name, me["session"], wanted, reason.strip(), seconds)
            if res["granted"] is None:
                t = res["ticket"]
                from .store.queue_rules import queued_text, shown

                self._feed("queued", paths=[c for c, _ in wanted], position=res["position"], holders=res["holders"])
                return Queued(id=t["id"], agent=name, paths=[shown(p, k) for p, k in t["paths"]],
                              reason=t["reason"], queued=t["queued"], position=res["position"], ahead=res["ahead"],
                              holders=res["holders"], text=queued_text(t, res["position"], res["ahead"],
                                                                        res["holders"]))
            made = res["granted"]
        self._feed("reserve", paths=[r["path"] for r in made], reason=reason.strip(), ttl=seconds)
        return [Reservation.from_dict(r) for r in made]

    def waiting(self) -> list[dict]:
        """The waiting line: every ticket (``agent``, ``paths`` as ``[path, kind]``, ``queued``...) in line order."""
        return self.store.tickets()

    def settle(self) -> list[tuple[dict, list[dict]]]:
        """Grant freed claims to the first live waiters now (expiry and deaths are otherwise noticed by the next
        reserve, release, heartbeat, doctor or slow check); ``[(ticket, claims made)]``."""
        return self.store.settle()

    def release(self, paths: list[str] | str | None = None, cwd: str | None = None) -> list[Reservation]:
        """Release the caller's claims on these paths (canonical match), or all of them.

        The caller also leaves the waiting line for these paths (every line, when ``None``)."""
        name = self._need_agent()
        if isinstance(paths, str):
            paths = [paths]
        keys = None
        if paths:
            keys = []
            for p in paths:
                c = self.canonical(p, cwd)
                if c is not None:
                    keys.append(c)
        left = self.store.withdraw(name, keys)
        if left:
            self._feed("unqueued", paths=[p for t in left for p, _ in t["paths"]])
        gone = self.store.release(name, keys)
        if gone:
            self._feed("release", paths=[r["path"] for r in gone])
        return [Reservation.from_dict(r) for r in gone]

    def release_dead(self, name: str) -> list[Reservation]:
        """An operator's release of every claim held by ``name``, which must not be live; its place in the waiting
        line goes too, and the freed claims go to the waiters as any release does.

        Raises :class:`~pi_mesh_plugin.errors.LiveAgent` for a live agent and
        :class:`~pi_mesh_plugin.errors.UnknownAgent` when nothing is known of ``name``."""
        rec = self.store.get_agent(name)

        def refuse_if_live(rec: dict | None) -> None:
            if rec is not None and self.store.is_live(rec):
                raise LiveAgent(f"{name} is live (pid {rec.get('pid')} on {rec.get('host')}): only a stale agent's "
                                f"claims can be released - message it instead (@{name} ...)")

        refuse_if_live(rec)
        held = self.store.held_by(name)
        if rec is None and not held:
            raise UnknownAgent(name)
        refuse_if_live(self.store.get_agent(name))  # it may have come back while we looked
        self.store.withdraw(name, None)
        gone = self.store.release(name, sorted({r["path"] for r in held})) if held else []
        if gone:
            self._feed("release-dead", holder=name, paths=[r["path"] for r in gone])
        return [Reservation.from_dict(r) for r in gone]

    def reservations(self, live_only: bool = True) -> list[Reservation]:
        t = self.now()
        out = []
        holders: dict = {}  # one look at each holder per listing, not one per claim
        for r in self.store.reservations():
            if live_only and not self._counts(r, t, holders):
                continue
            out.append(Reservation.from_dict(r))
        return out

    def _counts(self, rec: dict, t: float, holders: dict | None = None) -> bool:
        try:
            if parse_iso(rec["expires"]) <= t:
                return False
        except ValueError:
            return False
        key = (rec["holder"], rec.get("session"))
        if holders is not None and key in holders:
            return holders[key]  # type: ignore[no-any-return]
        holder = self.store.get_agent(rec["holder"])
        if holder is None or (rec.get("session") and holder["session"] != rec["session"]):
            live = False
        else:
            live = bool(self.store.is_live(holder))
        if holders is not None:
            holders[key] = live
        return live

    def check(self, path: str, tool: str = "edit", cwd: str | None = None, kind: str = P.FILE) -> Block | None:
        """``None`` if this agent may write ``path``, else a :class:`Block` naming the holder.

        Sees every claim made before this call in any process (no stale
        cache).  Paths outside the project are never blocked.  A caller with no
        agent name is checked against every claim.
        """
        key = self.canonical(path, cwd)
        if key is None:
            return None
        if kind == P.FILE and (path.endswith("/") or key == P.ROOT):
            kind = P.DIR
        t = self.now()
        stale = False
        for rec in self.store.covering(key, kind):
            if rec["holder"] == self.agent:
                continue
            if self._counts(rec, t):
                return self._block(tool, path, key, Reservation.from_dict(rec), t)
            stale = True
        if stale:
            # the slow path: a claim here stopped counting (expired, holder gone); hand it to the waiting line
            try:
                self.settle()
            except OSError:
                pass  # the check's answer stands; the next writer of the claims settles
        return None

    def _block(self, tool: str, given: str, key: str, r: Reservation, t: float) -> Block:
        try:
            left = format_duration(parse_iso(r.expires) - t)
        except ValueError:
            left = "?"
        shown = clip(given) if given == key else f"{clip(given)} (= {clip(key)} in this project)"
        msg = (f"BLOCKED: {tool} of {shown} - {r.shown_path()} is reserved by agent {r.holder}.\n"
               f"Reason: \"{r.reason}\"\n"
               f"Since {r.created}, expires in {left} ({r.expires}).\n"
               f"Do not work around this. To wait for it, join the line: "
               f"reserve(paths=[\"{r.shown_path()}\"], reason=\"...\", queue=true) - you will be told (an urgent "
               f"message) the moment it is yours, and can work on something else meanwhile. Or message the holder: "
               f"send_message(to=\"{r.holder}\", text=\"...\").")
        return Block(tool=tool, path=given, canonical=key, holder=r.holder, reason=r.reason, since=r.created,
                     expires=r.expires, reservation_id=r.id, message=msg)

    # -- feed and upkeep ----------------------------------------------------
    def _feed(self, event: str, ts: str | None = None, /, **fields: object) -> None:
        ev = {"ts": ts or iso(now()), "event": event, "agent": self.agent, **fields}
        try:
            self.store.append_feed(ev)
        except OSError:
            pass  # the feed is a log: never fail an operation because it cannot be appended

    def record(self, event: str, **fields: object) -> None:
        """Append an event to the activity feed (for plugins and adapters)."""
        self._feed(event, **fields)

    def feed(self, limit: int | None = None) -> list[dict]:
        return self.store.read_feed(limit)

    def doctor(self, fix: bool = False) -> list[dict]:
        found = self.store.doctor(fix)
        if fix:
            self.settle()  # what the fixes freed goes to the waiting line
        return found

    @property
    def warnings(self) -> list[str]:
        return self.store.warnings


def _check_fields(kind: str, rec: dict, what: str) -> None:
    """Bad input (a too long --model, a negative --pid) is a usage error, not a corrupt record."""
    from .errors import CorruptRecord
    from .schema import validate  # jsonschema only when the record is invalid

    try:
        validate(kind, rec)
    except CorruptRecord as e:
        raise UsageError(f"{what}: {e.why.split(': ', 1)[-1]}") from None


def generated_name() -> str:
    return f"agent-{os.urandom(3).hex()}"
