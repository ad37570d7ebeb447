"""``pi-mesh serve``: the long-lived sidecar of the Pi extension.

One Python process per Pi session answers every check, so a tool call pays a
pipe round trip instead of an interpreter start.  The protocol is JSON lines:

* requests on stdin: ``{"id": 7, "op": "pre_tool_call", ...}``;
* responses on stdout: ``{"id": 7, "ok": true, "result": {...}}`` or
  ``{"id": 7, "ok": false, "error": "<one line>", "code": "<code>"}``;
* unsolicited events on stdout: ``{"event": "message", ...}`` (one per inbox
  message as it arrives), ``{"event": "warning", "message": ...}``.  Mail already waiting at
  ``hello`` comes in its result (``backlog``, the same objects) rather than as events, so the
  extension can hand it over before the first prompt.

Ops: ``hello`` (alias ``join``), ``ping``, ``tools``, ``pre_tool_call``,
``call_tool``, ``post_tool_call``, ``ack``, ``status``, ``leave``.

Error codes: ``bad_json`` (a line that is not JSON), ``bad_request`` (JSON of
the wrong shape, a missing or mistyped field), ``unknown_op``, ``not_joined``
(an op that needs ``hello`` first), ``usage`` / ``blocked`` / ``error`` (a
:class:`~pi_mesh_plugin.errors.MeshError` with exit code 2 / 3 / 1) and
``internal`` (a bug: one line, never a traceback, unless ``PI_MESH_DEBUG``).
A malformed ``pre_tool_call`` is an error response, never an allow: the
extension blocks the call.

Messages are delivered at least once, with unique ids: the sidecar pushes each
unread message once per session and marks it read only when the extension
acks it (``ack`` with ``stage: "delivered"``, sent when the message has entered
the model's context); ``stage: "queued"`` only records the hand-over in the
feed.  A message never acked is pushed again by the next sidecar.  New mail
is noticed through the core's watcher (inotify on the file store, LISTEN/NOTIFY
on PostgreSQL), with a slow safety poll; without either, by polling.

The sidecar decides nothing itself: checks go to
:func:`~pi_mesh_plugin.host.decide`, through :class:`~pi_mesh_plugin.host.PluginHost`.
The Mesh is used under one lock by the request loop and the mail pump.
Request validation and message events live in :mod:`.sidecar_protocol`, the
mail pump in :mod:`.mailpump`; this module is the request loop and the ops.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any, BinaryIO

from ...errors import EXIT_BLOCKED, EXIT_USAGE, MeshError, clip
from ...safejson import loads
from ...records import ToolCall
from .mailpump import DEFAULT_POLL, WATCH_SAFETY_POLL, MailPump
from .sidecar_protocol import (
    MAX_LINE,
    PROTOCOL,
    BadRequest,
    NotJoinedYet,
    UnknownOp,
    _field,
    _one_line,
    message_content,
    message_event,
    pi_tool_call,
)

__all__ = ["DEFAULT_POLL", "MAX_LINE", "PROTOCOL", "WATCH_SAFETY_POLL", "BadRequest", "NotJoinedYet", "Sidecar",
           "UnknownOp", "message_content", "message_event", "pi_tool_call", "serve"]


class Sidecar(MailPump):
    def __init__(self, out: BinaryIO, *, root: str | None = None, agent: str | None = None, config_path: str | None = None,
                 watch: bool = True, poll: float | None = None) -> None:
        self._out = out
        self._out_lock = threading.Lock()
        self._lock = threading.RLock()  # the Mesh and the host are used under it
        self.root, self.agent_name, self.config_path = root, agent, config_path
        self.watch = watch
        self.poll = poll
        self.mesh: Any = None  # Mesh, once joined
        self.host: Any = None  # PluginHost
        self.joined = False
        self.left = False
        self._pushed: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()  # stops the mail pump (leave, EOF)
        self._closed = threading.Event()  # stdout is gone: stop serving
        self._pump_thread: threading.Thread | None = None
        self._observer: Any = None  # the Watcher waking the pump
        self._warned: set[str] = set()
        self.lines = 0

    # -- output ---------------------------------------------------------------
    def emit(self, obj: dict) -> bool:
        data = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._out_lock:
            try:
                self._out.write(data)
                self._out.flush()
                return True
            except (BrokenPipeError, ValueError, OSError):
                self._closed.set()
                self._stop.set()
                return False

    def warn(self, text: str) -> None:
        text = _one_line(text)
        if text not in self._warned:
            self._warned.add(text)
            self.emit({"event": "warning", "message": text})

    # -- the request loop -----------------------------------------------------
    def run(self, infile: BinaryIO) -> int:
        """Serve requests from ``infile`` (binary) until EOF; then leave the mesh. Returns the exit code."""
        try:
            while not self._closed.is_set():
                line = infile.readline(MAX_LINE + 1)
                if not line:
                    break
                if len(line) > MAX_LINE and not line.endswith(b"\n"):
                    while True:  # drop the rest of the over-long line
                        rest = infile.readline(MAX_LINE)
                        if not rest or rest.endswith(b"\n"):
                            break
                    self.lines += 1
                    self.emit({"id": None, "ok": False, "code": "bad_request",
                               "error": f"line {self.lines}: longer than {MAX_LINE} bytes; ignored"})
                    continue
                response = self.handle_line(line)
                if response is not None and not self.emit(response):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            self.shutdown()
        return 0

    def handle_line(self, line: bytes) -> dict | None:
        self.lines += 1
        if not line.strip():
            return None
        try:
            req = loads(line)
        except ValueError as e:
            return {"id": None, "ok": False, "code": "bad_json",
                    "error": f"line {self.lines}: not JSON ({_one_line(e, 200)})"}
        if not isinstance(req, dict):
            return {"id": None, "ok": False, "code": "bad_request",
                    "error": f"line {self.lines}: a request must be a JSON object, not {type(req).__name__}"}
        rid = req.get("id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (int, str))):
            return {"id": None, "ok": False, "code": "bad_request",
                    "error": f"line {self.lines}: id must be a number or a string"}
        return self.handle(req)

    def handle(self, req: dict) -> dict:
        rid = req.get("id")
        op = req.get("op")
        try:
            if not isinstance(op, str) or not op:
                raise BadRequest(f"request {clip(rid)}: missing field 'op' (a string such as \"pre_tool_call\")")
            method = self.OPS.get(op)
            if method is None:
                raise UnknownOp(f"unknown op {clip(repr(op))} (ops: {', '.join(sorted(self.OPS))})")
            with self._lock:
                result = method(self, req)
            return {"id": rid, "ok": True, "result": result}
        except BadRequest as e:
            return {"id": rid, "ok": False, "code": e.code, "error": _one_line(e)}
        except MeshError as e:
            code = {EXIT_USAGE: "usage", EXIT_BLOCKED: "blocked"}.get(e.exit_code, "error")
            return {"id": rid, "ok": False, "code": code, "error": _one_line(e), "exit_code": e.exit_code}
        except Exception as e:  # noqa: BLE001 - one line back to the extension, never a traceback
            if os.environ.get("PI_MESH_DEBUG"):
                import traceback

                traceback.print_exc(file=sys.stderr)
            return {"id": rid, "ok": False, "code": "internal",
                    "error": _one_line(f"pi-mesh sidecar: internal error in {op}: {type(e).__name__}: {e}")}

    # -- ops --------------------------------------------------------------------
    def _need_join(self, req: dict) -> None:
        if not self.joined:
            raise NotJoinedYet(f"{req.get('op')}: send hello first (the sidecar has not joined the mesh)")

    def op_ping(self, req: dict) -> dict:
        return {"pong": True, "protocol": PROTOCOL, "pid": os.getpid(), "joined": self.joined,
                "agent": self.mesh.agent if self.mesh is not None else None}

    def op_hello(self, req: dict) -> dict:
        name = _field(req, "name", str)
        harness = _field(req, "harness", str, default="pi")
        model = _field(req, "model", str)
        pid = _field(req, "pid", int)
        cwd = _field(req, "cwd", str)
        offered = _field(req, "offered", list, default=[])
        if not all(isinstance(n, str) for n in offered):
            raise BadRequest("hello: offered must be a list of tool names")
        if self.joined:
            raise BadRequest(f"hello: already joined as {self.mesh.agent}")
        if cwd is not None and not os.path.isdir(cwd):
            raise BadRequest(f"hello: cwd {clip(cwd)} is not a directory")
        from ...host import PluginHost
        from ...mesh import Mesh

        if self.mesh is None or (cwd and self.mesh.cwd != os.path.abspath(cwd)):
            self.mesh = Mesh(self.root, name or self.agent_name, config_path=self.config_path, cwd=cwd)
        agent = self.mesh.join(name, harness=harness, model=model, pid=pid)
        self.host = PluginHost(self.mesh)
        self.joined = True
        tools = [t.to_dict() for t in self.host.tools()]
        cfg = self.mesh.config
        self._pushed.clear()
        backlog = []
        for m in self.mesh.read_inbox(unread_only=True, peek=True):
            self._pushed.add(m.id)
            backlog.append(message_event(m))
        self._start_pump()
        return {"protocol": PROTOCOL, "agent": agent.name, "session": agent.session, "pid": agent.pid,
                "root": self.mesh.root, "store": self.mesh.store.url, "tools": tools,
                "guard": list(cfg.guard), "deny": list(cfg.deny), "on_store_error": cfg.on_store_error,
                "fail_closed": [n for n in offered if cfg.guards(n) or cfg.denies(n)],
                "hidden": [n for n in offered if cfg.denies(n)],
                "sidecar_timeout": cfg.sidecar_timeout, "heartbeat_ttl": cfg.heartbeat_ttl,
                "notices": list(self.mesh.notices), "unread": len(backlog), "backlog": backlog,
                "sidecar_pid": os.getpid()}

    def op_tools(self, req: dict) -> list:
        self._need_join(req)
        return [t.to_dict() for t in self.host.tools()]

    def op_pre_tool_call(self, req: dict) -> dict:
        self._need_join(req)
        tool = _field(req, "tool", str, required=True)
        tool_input = _field(req, "input", dict, default={})
        cwd = _field(req, "cwd", str)
        call = pi_tool_call(tool, tool_input, cwd, self.mesh.agent)
        block = self.host.pre_tool_call(call)
        if block is None:
            return {"allow": True, "block": None}
        return {"allow": False, "block": block.to_dict(), "reason": block.message}

    def op_call_tool(self, req: dict) -> dict:
        self._need_join(req)
        name = _field(req, "name", str, required=True)
        arguments = _field(req, "arguments", dict, default={})
        cwd = _field(req, "cwd", str)
        output = self.host.call_tool(name, arguments, cwd=cwd)
        text = self.host.render(output)
        if name == "read_inbox":  # messages read through the tool need no push any more
            self._wake.set()
        return {"output": output, "text": text}

    def op_post_tool_call(self, req: dict) -> dict:
        self._need_join(req)
        tool = _field(req, "tool", str, required=True)
        tool_input = _field(req, "input", dict, default={})
        ok = _field(req, "ok", bool, default=True)
        cwd = _field(req, "cwd", str)
        try:
            call = pi_tool_call(tool, tool_input, cwd, self.mesh.agent)
        except BadRequest:
            call = ToolCall(tool=tool, input=tool_input, agent=self.mesh.agent, cwd=cwd, harness="pi",
                            raw_tool=tool)
        self.host.post_tool_call(call, {"ok": ok, "output": req.get("output")})
        return {}

    def op_ack(self, req: dict) -> dict:
        self._need_join(req)
        ids = _field(req, "ids", list, required=True)
        if not all(isinstance(i, str) for i in ids):
            raise BadRequest("ack: ids must be an array of message id strings")
        stage = _field(req, "stage", str, default="delivered")
        if stage not in ("queued", "delivered"):
            raise BadRequest(f"ack: stage must be \"queued\" or \"delivered\", not {clip(repr(stage))}")
        if stage == "queued":
            self.mesh.record("queued", ids=ids)
            return {"marked": 0}
        marked = self.mesh.mark_read(ids) if ids else 0
        return {"marked": marked}

    def op_status(self, req: dict) -> dict:
        self._need_join(req)
        mesh = self.mesh
        agents = [a.to_dict() for a in mesh.agents()]
        claims = [r.to_dict() for r in mesh.reservations()]
        unread = mesh.read_inbox(unread_only=True, peek=True)
        mail = [{"id": m.id, "from": m.sender, "urgent": m.urgent, "text": m.text} for m in unread]
        return {"agent": mesh.agent, "root": mesh.root, "agents": agents, "claims": claims,
                "unread": len(mail), "messages": mail, "text": self._status_text(agents, claims, mail)}

    def _status_text(self, agents: list[dict], claims: list[dict], mail: list[dict]) -> str:
        me = self.mesh.agent
        lines = [f"pi-mesh: you are {me} in {self.mesh.root}", "", f"Agents ({len(agents)}):"]
        for a in agents:
            tags = ["live" if a["live"] else "gone"] + [x for x in (a.get("harness"),) if x]
            if a["name"] == me:
                tags.append("you")
            line = f"  {a['name']} ({', '.join(tags)})"
            if a.get("status"):
                line += f" - {a['status']}"
            lines.append(line)
        lines += ["", f"Claims ({len(claims)}):"]
        for r in claims:
            shown = r["path"] + ("/" if r["kind"] == "dir" and r["path"] != "." else "")
            lines.append(f"  {shown} held by {r['holder']}: \"{r['reason']}\" (until {r['expires']})")
        if not claims:
            lines.append("  none")
        from ...plugins.mesh import waiters_by_holder

        _, waiting = waiters_by_holder(self.mesh)
        if waiting:
            lines += ["", "Waiting in line:"]
            lines += [f"  {who} for {w}" for who, ws in waiting.items() for w in ws]
        lines += ["", f"Unread mail ({len(mail)}):"]
        for m in mail:
            first = m["text"].splitlines()[0] if m["text"] else ""
            lines.append(f"  [{m['id']}] from {m['from']}{' (urgent)' if m['urgent'] else ''}: {first[:120]}")
        if not mail:
            lines.append("  none")
        return "\n".join(lines)

    def op_leave(self, req: dict) -> dict:
        self._need_join(req)
        self._stop_pump()
        gone = self.mesh.leave()
        self.joined, self.left = False, True
        return {"left": bool(gone)}

    OPS: dict[str, Any] = {  # noqa: RUF012 - a constant table
        "ping": op_ping,
        "hello": op_hello,
        "join": op_hello,
        "tools": op_tools,
        "pre_tool_call": op_pre_tool_call,
        "call_tool": op_call_tool,
        "post_tool_call": op_post_tool_call,
        "ack": op_ack,
        "status": op_status,
        "leave": op_leave,
    }

    # -- end ----------------------------------------------------------------------
    def shutdown(self) -> None:
        """EOF or a signal: stop the pump and leave the mesh (the session is over)."""
        self._stop_pump(wait=True)
        with self._lock:
            if self.joined and self.mesh is not None:
                try:
                    self.mesh.leave()
                except Exception:  # noqa: BLE001 - best effort: the owner process is gone anyway
                    pass
                self.joined = False
            if self.mesh is not None:
                try:
                    self.mesh.close()
                except Exception:  # noqa: BLE001
                    pass


def serve(root: str | None = None, agent: str | None = None, config_path: str | None = None, *,
          watch: bool = True, poll: float | None = None) -> int:
    """Run the sidecar on this process's stdin/stdout.

    The protocol owns file descriptor 1: ``sys.stdout`` is pointed at stderr so
    a stray ``print`` in a plugin cannot corrupt the stream.
    """
    from ...signals import end_on_term

    out = os.fdopen(os.dup(1), "wb", buffering=0)
    sys.stdout = sys.stderr

    end_on_term()
    sidecar = Sidecar(out, root=root, agent=agent, config_path=config_path, watch=watch, poll=poll)
    return sidecar.run(sys.stdin.buffer)
