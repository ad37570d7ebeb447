"""``pi-mesh top``: a live terminal dashboard (Textual) for the person running the agents.

It shows who is here (live or stale, harness, model, last activity, how many
claims, unread mail, status line), every stored claim (holder, path, reason,
age, expiry, and whether it still counts), and the feed scrolling live.  The
compose line speaks as the operator, a registered agent named ``human``
(owned by the dashboard process, so it goes stale if the dashboard is
killed, and leaves when it quits)::

    @bob please rebase on main        message one agent
    @all stand down, tests are red    message every live agent
    /release-dead bob                 drop the claims of bob, which must be stale
    /help

Mail to the operator appears in the feed pane as it arrives.

Updates come from :class:`~pi_mesh_plugin.watcher.Watcher` (file-system
events, or the store's notifications), not from a busy loop; a slow clock
(``tick`` seconds, default 5) only re-ages rows and re-judges liveness, which
changes with time rather than with files.

The pure parts - :func:`snapshot`, :func:`parse_compose`,
:func:`release_dead`, :func:`describe` - do not need a terminal.
"""

from __future__ import annotations

import os
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.message import Message as TextualMessage
from textual.widgets import DataTable, Footer, Header, Input, RichLog, Static

from .clock import format_duration, parse_iso
from .errors import EXIT_BLOCKED, MeshError, UnknownAgent, UsageError
from .names import is_valid_name

if TYPE_CHECKING:
    from .mesh import Mesh
    from .watcher import FeedTailer, StoreFeedFollower, Watcher

Row = dict[str, Any]

OPERATOR = "human"
HELP = ("@NAME text: message an agent · @all text: message every live agent · "
        "/release-dead NAME: drop a stale agent's claims · /help")


AGENT_COLUMNS = (("agent", 24), ("state", 5), ("harness", 14), ("model", 24), ("last activity", 40),
                 ("claims", 14), ("unread", 6), ("status", 60))
CLAIM_COLUMNS = (("holder", 24), ("path", 60), ("reason", 60), ("age", 6), ("expires", 8), ("state", 12))


class LiveAgent(MeshError):
    """Refused: the agent whose claims should be released is still live."""

    exit_code = EXIT_BLOCKED


# -- the model: what the dashboard shows, without a terminal ------------------

def _ago(ts: str | None, t: float) -> str:
    if not ts:
        return "-"
    try:
        return format_duration(max(0.0, t - parse_iso(ts)))
    except (ValueError, TypeError):
        return "?"


def snapshot(mesh: Mesh, t: float | None = None) -> dict[str, list[Row]]:
    """Rows for the agents and claims tables: ``{"agents": [...], "claims": [...]}`` (plain dicts)."""
    t = time.time() if t is None else t
    store = mesh.store
    agents = {}
    for rec in store.list_agents():
        agents[rec["name"]] = {**rec, "live": bool(store.is_live(rec))}
    claims = []
    held: dict[str, int] = {}
    for r in store.reservations():
        holder = agents.get(r["holder"])
        try:
            expired = parse_iso(r["expires"]) <= t
        except (ValueError, TypeError):
            expired = True
        if holder is None or (r.get("session") and holder["session"] != r["session"]):
            state = "holder gone"
        elif not holder["live"]:
            state = "holder stale"
        elif expired:
            state = "expired"
        else:
            state = "live"
            held[r["holder"]] = held.get(r["holder"], 0) + 1
        shown = r["path"] + "/" if r.get("kind") == "dir" and r["path"] != "." else r["path"]
        try:
            left = format_duration(parse_iso(r["expires"]) - t)
        except (ValueError, TypeError):
            left = "?"
        claims.append({"id": r["id"], "holder": r["holder"], "path": shown, "reason": r.get("reason", ""),
                       "age": _ago(r.get("created"), t), "expires": left, "state": state,
                       "counts": state == "live"})
    for r in claims:
        if not r["counts"] and r["holder"] in agents:
            agents[r["holder"]].setdefault("stale_claims", 0)
            agents[r["holder"]]["stale_claims"] += 1
    rows = []
    for name, a in agents.items():
        act = a.get("activity") or {}
        if act.get("last"):
            last = f"{act['last']} ({_ago(act.get('last_at'), t)} ago)"
        else:
            last = f"seen {_ago(a.get('last_seen'), t)} ago"
        try:
            unread = store.unread_count(name)
        except (OSError, ValueError):
            unread = 0
        rows.append({"name": name, "live": a["live"], "state": "live" if a["live"] else "stale",
                     "harness": a.get("harness") or "-", "model": a.get("model") or "-", "last": last,
                     "claims": held.get(name, 0), "stale_claims": a.get("stale_claims", 0), "unread": unread,
                     "status": a.get("status") or "", "pid": a.get("pid"), "host": a.get("host"),
                     "cwd": a.get("cwd"), "activity": act})
    rows.sort(key=lambda r: (not r["live"], r["name"] == OPERATOR, r["name"]))
    claims.sort(key=lambda r: (not r["counts"], r["holder"], r["path"]))
    return {"agents": rows, "claims": claims}


def parse_compose(line: str) -> tuple[str, str, str]:
    """``(kind, target, text)`` for one compose line: kind is ``send``, ``broadcast``, ``release-dead`` or ``help``.

    Raises :class:`~pi_mesh_plugin.errors.UsageError` (one line) for anything else.
    """
    line = line.strip()
    if not line:
        raise UsageError("nothing to send: type @NAME text, @all text or /release-dead NAME")
    if line.startswith("/"):
        cmd, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        if cmd in ("help", "h", "?"):
            return "help", "", ""
        if cmd in ("release-dead", "release-stale"):
            if not rest or " " in rest:
                raise UsageError("usage: /release-dead NAME")
            if not is_valid_name(rest):
                raise UsageError(f"invalid agent name {rest!r}")
            return "release-dead", rest, ""
        raise UsageError(f"unknown command /{cmd}: {HELP}")
    if line.startswith("@"):
        target, _, text = line[1:].partition(" ")
        text = text.strip()
        if not target:
            raise UsageError("who to? write @NAME text or @all text")
        if not text:
            raise UsageError(f"nothing to send to {target}: write @{target} followed by the message")
        if target in ("all", "*"):
            return "broadcast", "*", text
        if not is_valid_name(target):
            raise UsageError(f"invalid agent name {target!r}")
        return "send", target, text
    raise UsageError(f"start with @NAME or @all to send, or / for a command ({HELP})")


def release_dead(mesh: Mesh, name: str) -> list[Row]:
    """Release every claim held by ``name``, which must not be live; returns the released records.

    Raises :class:`LiveAgent` for a live agent (message it instead) and
    :class:`~pi_mesh_plugin.errors.UnknownAgent` when nothing is known of ``name``.
    """
    store = mesh.store
    rec = store.get_agent(name)

    def refuse_if_live(rec: Row | None) -> None:
        if rec is not None and store.is_live(rec):
            raise LiveAgent(f"{name} is live (pid {rec.get('pid')} on {rec.get('host')}): only a stale agent's "
                            f"claims can be released - message it instead (@{name} ...)")

    refuse_if_live(rec)
    held = [r for r in store.reservations() if r["holder"] == name]
    if rec is None and not held:
        raise UnknownAgent(name)
    if not held:
        return []
    refuse_if_live(store.get_agent(name))  # it may have come back while we looked
    gone: list[Row] = store.release(name, sorted({r["path"] for r in held}))
    if gone:
        mesh.record("release-dead", holder=name, paths=[r["path"] for r in gone])
    return gone


def describe(ev: Row) -> Text:
    """One feed event as a short coloured line."""
    ts = str(ev.get("ts", ""))
    clock = ts[11:19] if len(ts) >= 19 else ts
    who = ev.get("agent") or "-"
    kind = str(ev.get("event", "?"))
    line = Text()
    line.append(clock + " ", style="dim")
    line.append(f"{who:<12} ", style="bold cyan")
    colour = {"reserve": "yellow", "release": "green", "release-dead": "magenta", "refused": "red",
              "blocked": "red", "join": "green", "leave": "dim", "message": "blue", "edit": "cyan",
              "commit": "bold green", "test": "bold"}.get(kind, "")
    line.append(f"{kind:<9} ", style=colour)
    paths = ev.get("paths")
    if kind == "message":
        detail = f"-> {ev.get('to')}" + (f" ({ev.get('recipients')} recipients)" if ev.get("to") == "*" else "")
        if ev.get("urgent"):
            detail += " URGENT"
    elif kind in ("reserve", "release", "release-dead", "refused") and isinstance(paths, list):
        detail = " ".join(str(p) for p in paths)
        if ev.get("reason"):
            detail += f" - {ev['reason']}"
        if ev.get("holders"):
            detail += f" (held by {', '.join(ev['holders'])})"
        if ev.get("holder"):
            detail += f" (of {ev['holder']})"
    elif kind == "join":
        detail = f"{ev.get('harness') or ''} pid {ev.get('pid')}".strip()
    elif kind == "edit" and isinstance(paths, list):
        detail = f"{ev.get('tool') or ''} {' '.join(str(p) for p in paths)}".strip()
    elif kind == "blocked":
        detail = f"{ev.get('tool')} {ev.get('path')} (held by {ev.get('holder')})"
    elif kind in ("commit", "test"):
        detail = str(ev.get("command") or "")
        if kind == "test":
            detail += "  [passed]" if ev.get("ok") else "  [FAILED]"
    else:
        skip = {"ts", "event", "agent"}
        detail = " ".join(f"{k}={v}" for k, v in ev.items() if k not in skip)
    line.append(detail)
    return line


# -- the app ------------------------------------------------------------------

class MeshChanged(TextualMessage):
    """Posted (from the watcher's thread) when the mesh changed."""

    def __init__(self, topics: frozenset[str]) -> None:
        super().__init__()
        self.topics = topics


class MeshTop(App[None]):
    """The dashboard.  ``mesh`` must be joined as the operator (see :func:`operator_mesh`)."""

    TITLE = "pi-mesh top"
    CSS = """
    #agents { height: 2fr; min-height: 5; }
    #claims { height: 2fr; min-height: 4; }
    #detail { height: auto; max-height: 3; color: $text-muted; padding: 0 1; }
    #feed { height: 3fr; min-height: 5; border-top: solid $primary; }
    #result { height: 1; padding: 0 1; }
    .label { height: 1; background: $boost; padding: 0 1; text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("c", "compose", "Compose"),
        Binding("m", "message_selected", "Message agent"),
        Binding("a", "message_all", "Message all"),
        Binding("x", "release_selected", "Release stale claims"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "leave_compose", "Back", show=False),
    ]

    def __init__(self, mesh: Mesh, *, leave_on_exit: bool = True, tick: float = 5.0, watch_mode: str = "auto",
                 poll_interval: float = 1.0, history: int = 200) -> None:
        super().__init__()
        self.mesh = mesh
        self.leave_on_exit = leave_on_exit
        self.tick = tick
        self.watch_mode = watch_mode
        self.poll_interval = poll_interval
        self.history = history
        self.watcher: Watcher | None = None
        self.follower: FeedTailer | StoreFeedFollower | None = None
        self.data: dict[str, list[Row]] = {"agents": [], "claims": []}
        self.last_result = ""
        self._last_beat = time.monotonic()
        self.sub_title = f"{os.path.basename(mesh.root.rstrip(os.sep)) or mesh.root} as {mesh.agent}"

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            yield Static("Agents", classes="label", id="agents-label")
            yield DataTable(id="agents", cursor_type="row", zebra_stripes=True)
            yield Static("", id="detail")
            yield Static("Claims", classes="label", id="claims-label")
            yield DataTable(id="claims", cursor_type="row", zebra_stripes=True)
            yield RichLog(id="feed", markup=False, wrap=False, max_lines=2000, auto_scroll=True)
            yield Static("", id="result")
            yield Input(placeholder=f"as {self.mesh.agent}: {HELP}", id="compose", select_on_focus=False)
        yield Footer()

    # -- lifecycle ------------------------------------------------------------
    def on_mount(self) -> None:
        from .watcher import Watcher, feed_follower

        # watch first, then read: a change made while starting up is reported, never missed
        self.follower = follower = feed_follower(self.mesh.store)
        self.watcher = Watcher(self.mesh.store, self._changed, mode=self.watch_mode,
                               poll_interval=self.poll_interval).start()
        log = self.query_one("#feed", RichLog)
        for ev in follower.history(self.history):
            log.write(describe(ev))
        self._apply(frozenset({"feed", "agents", "inbox"}))
        self.set_interval(self.tick, self.on_tick)
        self.query_one("#agents", DataTable).focus()

    def _changed(self, topics: frozenset[str]) -> None:  # the watcher's thread
        self.post_message(MeshChanged(topics))

    def on_unmount(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.follower is not None:
            self.follower.close()
            self.follower = None
        if self.leave_on_exit and self.mesh.agent:
            try:
                self.mesh.leave()
            except (MeshError, OSError):
                pass

    # -- updates --------------------------------------------------------------
    def on_mesh_changed(self, message: MeshChanged) -> None:
        try:
            self._apply(message.topics)
        except NoMatches:  # arrived while the app was shutting down
            pass

    def _apply(self, topics: frozenset[str]) -> None:
        if "feed" in topics and self.follower is not None:
            log = self.query_one("#feed", RichLog)
            for ev in self.follower.read():
                log.write(describe(ev))
        if topics & {"agents", "reservations", "inbox"}:
            self.refresh_tables()
        if "inbox" in topics:
            self.show_inbox()

    def on_tick(self) -> None:
        try:
            self.refresh_tables()
        except NoMatches:
            return
        ttl = getattr(self.mesh.store, "heartbeat_ttl", 60.0) or 60.0
        if time.monotonic() - self._last_beat > ttl / 3:
            self._last_beat = time.monotonic()
            try:
                self.mesh.heartbeat()
            except (MeshError, OSError):
                pass

    def show_inbox(self) -> None:
        try:
            msgs: list[Any] = self.mesh.read_inbox()  # Message records (slots set at run time)
        except (MeshError, OSError):
            return
        log = self.query_one("#feed", RichLog)
        for m in msgs:
            line = Text()
            line.append(f"{m.created[11:19]} ", style="dim")
            line.append(f"mail from {m.sender}" + (" (urgent)" if m.urgent else "") + ": ", style="bold reverse")
            line.append(m.text)
            log.write(line)
            self.notify(m.text, title=f"from {m.sender}", timeout=8)

    def refresh_tables(self) -> None:
        try:
            self.data = snapshot(self.mesh)
        except (MeshError, OSError) as e:
            self.set_result(f"cannot read the mesh: {e}", error=True)
            return
        rows = []
        for a in self.data["agents"]:
            style = "" if a["live"] else "dim"
            claims = str(a["claims"]) + (f" (+{a['stale_claims']} stale)" if a["stale_claims"] else "")
            rows.append((a["name"], [Text(a["name"], style="bold" if a["live"] else "dim"),
                                     Text(a["state"], style="green" if a["live"] else "red"),
                                     Text(a["harness"], style=style), Text(a["model"], style=style),
                                     Text(a["last"], style=style), Text(claims, style=style),
                                     Text(str(a["unread"]), style="bold yellow" if a["unread"] else style),
                                     Text(a["status"], style=style)]))
        self._fill(self.query_one("#agents", DataTable), AGENT_COLUMNS, rows)
        rows = []
        for c in self.data["claims"]:
            style = "" if c["counts"] else "dim"
            rows.append((c["id"], [Text(c["holder"], style="bold" if c["counts"] else "dim"),
                                   Text(c["path"], style=style), Text(c["reason"], style=style),
                                   Text(c["age"], style=style), Text(c["expires"], style=style),
                                   Text(c["state"], style="green" if c["counts"] else "red")]))
        self._fill(self.query_one("#claims", DataTable), CLAIM_COLUMNS, rows)
        live = sum(1 for a in self.data["agents"] if a["live"])
        counted = sum(1 for c in self.data["claims"] if c["counts"])
        self.query_one("#agents-label", Static).update(
            f"Agents: {live} live, {len(self.data['agents']) - live} stale")
        self.query_one("#claims-label", Static).update(
            f"Claims: {counted} in force, {len(self.data['claims']) - counted} stale or expired")
        self._show_detail()

    def _fill(self, table: DataTable[Any], columns: tuple[tuple[str, int], ...], rows: list[tuple[str, list[Text]]]) -> None:
        """Replace the table's rows, keeping the selected row.  Columns get explicit widths (fitted to the
        content, capped): DataTable's own fitting, deferred to an idle pass, sometimes measured a stale row."""
        keep = self._selected_key(table)
        table.clear(columns=True)
        for i, (label, cap) in enumerate(columns):
            width = max([len(label)] + [cells[i].cell_len for _, cells in rows])
            table.add_column(label, width=min(width, cap), key=label)
        for key, cells in rows:
            table.add_row(*cells, key=key)
        self._restore(table, keep)

    @staticmethod
    def _selected_key(table: DataTable[Any]) -> str | None:
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - no valid cursor
            return None

    @staticmethod
    def _restore(table: DataTable[Any], key: str | None) -> None:
        if key is None:
            return
        with suppress(Exception):  # the row is gone
            table.move_cursor(row=table.get_row_index(key), animate=False)

    def selected_agent(self, follow_focus: bool = False) -> Row | None:
        """The agent selected in the agents table - or, with ``follow_focus`` while the claims table has the
        focus, the holder of the selected claim (which may no longer be registered)."""
        claims = self.query_one("#claims", DataTable)
        if follow_focus and self.focused is claims:
            cid = self._selected_key(claims)
            holder = next((c["holder"] for c in self.data["claims"] if c["id"] == cid), None)
            if holder is None:
                return None
            return next((a for a in self.data["agents"] if a["name"] == holder), {"name": holder})
        key = self._selected_key(self.query_one("#agents", DataTable))
        return next((a for a in self.data["agents"] if a["name"] == key), None)

    def _show_detail(self) -> None:
        a = self.selected_agent()
        if a is None:
            self.query_one("#detail", Static).update("")
            return
        act = a["activity"] or {}
        cwd = a["cwd"] or "?"
        if cwd != "?" and os.path.isabs(cwd):
            rel = os.path.relpath(cwd, self.mesh.root)
            cwd = cwd if rel.startswith("..") else rel  # inside the project: relative to its root
        parts = [f"{a['name']}: pid {a['pid']}@{a['host']}", f"cwd {cwd}"]
        counts = [f"{k.replace('_', ' ')} {act[k]}" for k in ("edits", "commits", "test_runs") if act.get(k)]
        if counts:
            parts.append(", ".join(counts))
        files = act.get("files_touched")
        if files:
            shown = files if isinstance(files, list) else [str(files)]
            parts.append("touched " + ", ".join(str(f) for f in shown[-5:]))
        self.query_one("#detail", Static).update(Text(" · ".join(parts)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "agents":
            try:
                self._show_detail()
            except NoMatches:
                pass

    def set_result(self, text: str, error: bool = False) -> None:
        self.last_result = text
        self.query_one("#result", Static).update(Text(text, style="bold red" if error else "green"))

    # -- the compose line -------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        line = event.value
        ok = self.run_compose(line)
        if ok:
            event.input.value = ""

    def run_compose(self, line: str) -> bool:
        """Carry out one compose line; the outcome is shown on the result line.  True when it succeeded."""
        try:
            kind, target, text = parse_compose(line)
            if kind == "help":
                self.set_result(HELP)
                return True
            if kind == "send":
                m: Any = self.mesh.send(target, text)
                self.set_result(f"sent to {target} ({m.id})")
            elif kind == "broadcast":
                sent = self.mesh.broadcast(text)
                self.set_result(f"sent to {len(sent)} live agent(s)" if sent else "no other live agent to send to")
            else:
                gone = release_dead(self.mesh, target)
                self.set_result(f"released {len(gone)} claim(s) of {target}: "
                                + ", ".join(r["path"] for r in gone) if gone else f"{target} holds no claims")
        except MeshError as e:
            self.set_result(f"refused: {e}" if isinstance(e, LiveAgent) else f"error: {e}", error=True)
            return False
        except OSError as e:
            self.set_result(f"error: {e.strerror or e}", error=True)
            return False
        self.refresh_tables()
        return True

    # -- key bindings -----------------------------------------------------------
    def _compose_with(self, prefix: str) -> None:
        box = self.query_one("#compose", Input)
        box.value = prefix
        box.cursor_position = len(prefix)
        box.focus()

    def action_compose(self) -> None:
        self._compose_with(self.query_one("#compose", Input).value)

    def action_message_selected(self) -> None:
        a = self.selected_agent(follow_focus=True)
        if a is None:
            self.set_result("no agent selected", error=True)
            return
        self._compose_with(f"@{a['name']} ")

    def action_message_all(self) -> None:
        self._compose_with("@all ")

    def action_release_selected(self) -> None:
        a = self.selected_agent(follow_focus=True)
        if a is None:
            self.set_result("no agent selected", error=True)
            return
        self.run_compose(f"/release-dead {a['name']}")

    def action_refresh(self) -> None:
        self._apply(frozenset({"feed", "inbox", "agents"}))

    def action_leave_compose(self) -> None:
        self.query_one("#agents", DataTable).focus()


def operator_mesh(root: str | None = None, name: str = OPERATOR, config_path: str | None = None) -> Mesh:
    """Open the mesh as the operator and join (owner: this process).  Raises NameTaken if a live one holds it."""
    from .mesh import Mesh

    mesh = Mesh(root, name, config_path=config_path)
    mesh.join(name, harness="operator", pid=os.getpid(), status="supervising (pi-mesh top)")
    return mesh
