"""Hostile files in the store itself: deeply nested JSON, symlinks the mesh did not make, hand-placed
claims with non-canonical paths.

Each public function takes a scratch directory and returns figures with ``ok`` and ``line`` (the
torture runner prints and records them; ``tests/test_hostile_files.py`` asserts on them).  The
commands run as real processes (``python -m pi_mesh_plugin ...``, ``serve``, ``mcp``): a traceback,
a hang or a dead server is what these look for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .common import new_project, worker_env

DEEP = 1200  # levels: past the interpreter's recursion limit; about 2.4 kB


def deep_json() -> bytes:
    return b'{"schema": 1, "id": ' + b"[" * DEEP + b"]" * DEEP + b"}\n"


def cli(root: str, agent: str | None, *args: str, stdin: str | None = None, timeout: float = 60) -> tuple[int, str]:
    env = {**worker_env(), "PI_MESH_ROOT": root}
    if agent:
        env["PI_MESH_AGENT"] = agent
    try:
        r = subprocess.run([sys.executable, "-m", "pi_mesh_plugin", *args], input=stdin, capture_output=True,
                           text=True, env=env, cwd=root, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return -1, f"hung for {timeout}s"
    return r.returncode, r.stdout + r.stderr


def _crashed(out: str) -> bool:
    return "Traceback" in out or "RecursionError" in out


def _line_server(root: str, agent: str, args: list[str], lines: list[bytes], timeout: float = 60) -> tuple[int, str]:
    """Feed ``lines`` to a stdio server (``serve``/``mcp``), close stdin; (exit code, all output)."""
    env = {**worker_env(), "PI_MESH_ROOT": root, "PI_MESH_AGENT": agent}
    try:
        r = subprocess.run([sys.executable, "-m", "pi_mesh_plugin", *args], input=b"".join(lines),
                           capture_output=True, env=env, cwd=root, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return -1, f"hung for {timeout}s"
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def deep_nesting(base: str) -> dict:
    """A 1,200-level JSON document in every place a record is read from, and as a request line."""
    from pi_mesh_plugin.clock import new_id
    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.store.files import fsio

    base = os.path.join(base, "deep")
    os.makedirs(base)
    root = new_project(base, "proj")
    mesh_dir = os.path.join(root, ".pi", "mesh")
    with open(os.path.join(root, "hooks.toml"), "w") as f:
        f.write('[defaults]\nguard = ["edit", "write"]\n')
    alice = Mesh(root, "alice", cwd=root)
    alice.join()
    bob = Mesh(root, "bob", cwd=root)
    bob.join()
    alice.reserve(["src/a.py"], "a real claim")
    first = alice.send("bob", "before").id
    deep = deep_json()
    placed = {
        "message": os.path.join(mesh_dir, "inbox", "bob", "new", new_id() + ".json"),
        "claim": os.path.join(mesh_dir, "reservations", new_id() + ".json"),
        "agent": os.path.join(mesh_dir, "agents", "mallory.json"),
        "claim index": os.path.join(mesh_dir, "index", "claims.json"),
        "config cache": os.path.join(mesh_dir, "index", "config.json"),
    }
    for p in placed.values():
        with open(p, "wb") as f:
            f.write(deep)
    with open(os.path.join(mesh_dir, "feed.jsonl"), "ab") as f:
        f.write(b"[" * DEEP + b"]" * DEEP + b"\n" + b'{"event": ' + b"[" * DEEP + b"]" * DEEP + b"}\n")
    alice.close()
    bob.close()

    runs: dict[str, tuple[int, str]] = {}
    runs["doctor"] = cli(root, "bob", "doctor")  # first: it reports every placed file before a reader moves one
    runs["inbox"] = cli(root, "bob", "inbox")
    runs["claims"] = cli(root, "bob", "claims")
    runs["agents"] = cli(root, "bob", "agents")
    runs["feed"] = cli(root, "bob", "feed")
    runs["check (guarded edit elsewhere)"] = cli(root, "bob", "check", "src/b.py")
    runs["check (the real claim)"] = cli(root, "bob", "check", "src/a.py")
    runs["reserve"] = cli(root, "bob", "reserve", "src/sub/", "--reason", "after the deep files")
    runs["broadcast"] = cli(root, "alice", "broadcast", "to all")
    event = {"session_id": "s", "cwd": root, "hook_event_name": "PreToolUse", "tool_name": "Write",
             "tool_input": {"file_path": "src/b.py", "content": "x"}}
    runs["hook (Claude Code, allowed path)"] = cli(root, "bob", "hook", "claude-code", stdin=json.dumps(event))
    event["tool_input"] = {"file_path": "src/a.py", "content": "x"}
    runs["hook (Claude Code, claimed path)"] = cli(root, "bob", "hook", "claude-code", stdin=json.dumps(event))
    # a deep hook input itself
    runs["hook (deep stdin)"] = cli(root, "bob", "hook", "claude-code",
                                    stdin='{"tool_input": ' + "[" * DEEP + "]" * DEEP + "}")
    runs["doctor --fix"] = cli(root, "bob", "doctor", "--fix")
    runs["inbox after fix"] = cli(root, "bob", "inbox", "--all")
    # the sidecar: a deep request line, then a hello that must still be answered
    deep_line = b'{"id": 1, "op": "hello", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}\n"
    hello = json.dumps({"id": 2, "op": "hello", "agent": "pi-deep", "cwd": root}).encode() + b"\n"
    runs["serve"] = _line_server(root, "pi-deep", ["serve"], [deep_line, hello])
    # MCP: a deep JSON-RPC line, then an initialize that must still be answered
    mcp_deep = b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": ' + b"[" * DEEP + b"]" * DEEP + b"}\n"
    init = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "initialize",
                       "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "t", "version": "1"}}}).encode() + b"\n"
    runs["mcp"] = _line_server(root, "mcp-deep", ["mcp"], [mcp_deep, init])

    crashed = {k: v[1][-600:] for k, v in runs.items() if _crashed(v[1]) or v[0] == -1}
    rc = {k: v[0] for k, v in runs.items()}
    expect_ok = ("inbox", "claims", "agents", "feed", "check (guarded edit elsewhere)", "reserve", "broadcast",
                 "doctor --fix", "inbox after fix", "hook (Claude Code, allowed path)")
    failed = [k for k in expect_ok if rc[k] != 0]
    doctor_out = runs["doctor"][1]
    doctor_missed = [k for k, p in placed.items() if k not in ("claim index", "config cache")
                     and os.path.relpath(p, root) not in doctor_out]
    served = '"id": 2' in runs["serve"][1] or '"id":2' in runs["serve"][1]
    mcp_answered = '"id":2' in runs["mcp"][1].replace(" ", "")
    claimed_denied = '"deny"' in runs["hook (Claude Code, claimed path)"][1] and rc["check (the real claim)"] != 0
    mail_kept = first in runs["inbox after fix"][1] or first in runs["inbox"][1]
    quarantined = sorted(os.path.relpath(os.path.join(d, n), mesh_dir) for d, _, ns in os.walk(os.path.join(
        mesh_dir, "bad")) for n in ns) + sorted(fsio.listdir(os.path.join(mesh_dir, "inbox", "bob", "bad")))
    f = {"places": sorted(placed) + ["feed line", "hook stdin", "sidecar request", "mcp request"],
         "runs": len(runs), "crashed": crashed, "exit_codes": rc, "failed": failed, "doctor_missed": doctor_missed,
         "sidecar_answered_after": served, "mcp_answered_after": mcp_answered,
         "real_claim_still_enforced": claimed_denied, "earlier_mail_delivered": mail_kept,
         "quarantined": quarantined}
    f["ok"] = (not crashed and not failed and not doctor_missed and served and mcp_answered and claimed_denied
               and mail_kept and len(quarantined) >= 3)
    f["line"] = (f"deep nesting: {DEEP}-level JSON in {len(f['places'])} places, {len(runs)} real command runs; "
                 f"crashed or hung {len(crashed)}; failed {len(failed)}; doctor missed {len(doctor_missed)}; "
                 f"quarantined {len(quarantined)}; servers answered after {int(served) + int(mcp_answered)}/2")
    return f
