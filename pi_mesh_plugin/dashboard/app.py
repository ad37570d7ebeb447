"""The Textual app behind ``pi-mesh top``: tables, feed pane, compose line and key bindings."""

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

from ..errors import MeshError
from .commands import HELP, LiveAgent, parse_compose, release_dead
from .feed import describe
from .rows import OPERATOR, Row, snapshot

if TYPE_CHECKING:
    from ..mesh import Mesh
    from ..watcher import FeedTailer, StoreFeedFollower, Watcher

AGENT_COLUMNS = (("agent", 24), ("state", 5), ("harness", 14), ("model", 24), ("last activity", 40),
                 ("claims", 14), ("unread", 6), ("status", 60))
CLAIM_COLUMNS = (("holder", 24), ("path", 60), ("reason", 60), ("age", 6), ("expires", 8), ("state", 40))


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
        from ..watcher import Watcher, feed_follower

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
        ttl = self.mesh.store.heartbeat_ttl or 60.0
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
            state = c["state"] + (f", waiting: {', '.join(c['waiters'])}" if c.get("waiters") else "")
            rows.append((c["id"], [Text(c["holder"], style="bold" if c["counts"] else "dim"),
                                   Text(c["path"], style=style), Text(c["reason"], style=style),
                                   Text(c["age"], style=style), Text(c["expires"], style=style),
                                   Text(state, style="green" if c["counts"] else "red")]))
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
    from ..mesh import Mesh

    mesh = Mesh(root, name, config_path=config_path)
    mesh.join(name, harness="operator", pid=os.getpid(), status="supervising (pi-mesh top)")
    return mesh
