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


# -- symlinks the mesh did not make ------------------------------------------------------------
LINK_CASES = (".pi", ".pi/mesh", "agents", "inbox", "inbox/bob", "inbox/bob/new", "inbox/bob/cur",
              "inbox/bob/tmp", "reservations", "feed.jsonl", "index", "index/claims.json", "bad", "locks")


def _snapshot(d: str) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(d):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, d)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def _ops(root: str, joiner: str) -> dict:
    """Every everyday operation, each in a fresh process-like Mesh; ``{op: None | error text}``."""
    from pi_mesh_plugin.errors import MeshError
    from pi_mesh_plugin.mesh import Mesh

    def as_(agent: str, fn) -> str | None:
        m = Mesh(root, agent, cwd=root)
        try:
            fn(m)
            return None
        except MeshError as e:
            return "refused: " + str(e)
        except Exception as e:  # noqa: BLE001 - counted as a crash
            return f"CRASH {type(e).__name__}: {e}"
        finally:
            m.close()

    return {
        "send": as_("alice", lambda m: m.send("bob", "hello")),
        "read_inbox": as_("bob", lambda m: m.read_inbox()),
        "broadcast": as_("alice", lambda m: m.broadcast("all")),
        "reserve": as_("alice", lambda m: m.reserve(["src/b.py"], "r", ttl=60)),
        "claims": as_("bob", lambda m: m.reservations()),
        "check": as_("bob", lambda m: m.check("src/a.py")),
        "agents": as_("bob", lambda m: m.agents()),
        "feed": as_("bob", lambda m: m.feed()),
        "join": as_(joiner, lambda m: m.join(pid=0)),
    }


def _link_case(base: str, rel: str) -> dict:
    import shutil

    from pi_mesh_plugin.mesh import Mesh

    case_dir = os.path.join(base, rel.replace("/", "_").strip("._") or "dot")
    os.makedirs(case_dir)
    root = new_project(case_dir, "proj")
    with open(os.path.join(root, "hooks.toml"), "w") as f:
        f.write('[defaults]\nguard = ["edit", "write"]\n')
    alice, bob = Mesh(root, "alice", cwd=root), Mesh(root, "bob", cwd=root)
    alice.join(pid=0)
    bob.join(pid=0)
    alice.reserve(["src/a.py"], "a real claim")
    m = alice.send("bob", "first")
    bob.mark_read([m.id])
    alice.send("bob", "unread")
    alice.close()
    bob.close()
    mesh_dir = os.path.join(root, ".pi", "mesh")
    entry = os.path.join(root, rel) if rel.startswith(".pi") else os.path.join(mesh_dir, rel)
    outside = os.path.join(case_dir, "outside")
    os.makedirs(outside)
    target = os.path.join(outside, "target")
    if os.path.isdir(entry):
        shutil.copytree(entry, target, symlinks=True)  # what a clone of a hostile repository could hold
        shutil.rmtree(entry)
    else:
        shutil.copy2(entry, target)
        os.unlink(entry)
    os.symlink(target, entry)
    before = _snapshot(outside)
    ops = _ops(root, "carol")
    written_outside = sorted(k for k, v in _snapshot(outside).items() if before.get(k) != v) + \
        sorted(k for k in before if not os.path.lexists(os.path.join(outside, k)))
    crashes = {k: v for k, v in ops.items() if v and v.startswith("CRASH")}
    refusals = {k: v for k, v in ops.items() if v and v.startswith("refused")}
    unnamed = {k: v for k, v in refusals.items() if entry not in v}
    from pi_mesh_plugin.store.files import FileStore

    store = FileStore(root)
    report = [f for f in store.doctor(fix=False) if f["kind"] == "symlink"]
    reported = any(os.path.join(root, f["path"]) == entry and "repair" in f["detail"] for f in report)
    replaced = not os.path.islink(entry)  # a cache the mesh rewrote: the link itself was replaced, not followed
    fixable = rel not in (".pi", ".pi/mesh")
    after_fix: dict = {}
    if fixable:
        store = FileStore(root)
        store.doctor(fix=True)
        if rel == "agents":  # the registry went aside with the link: its agents join again
            for name in ("alice", "bob"):
                with Mesh(root, name, cwd=root) as m:
                    m.join(pid=0)
        after_fix = {k: v for k, v in _ops(root, "dave").items() if v is not None}
    still_outside = sorted(k for k, v in _snapshot(outside).items() if before.get(k) != v)
    return {"entry": rel, "refused": sorted(refusals), "refusal_sample": next(iter(refusals.values()), None),
            "crashes": crashes, "refusals_not_naming_the_link": unnamed, "written_outside": written_outside,
            "written_outside_after_fix": still_outside, "doctor_reported": reported, "link_replaced": replaced,
            "fixed_by_doctor": fixable and not after_fix, "errors_after_fix": after_fix}


def symlinks(base: str) -> dict:
    """Each entry of the mesh replaced by a symlink to a copy of itself outside the project."""
    base = os.path.join(base, "links")
    os.makedirs(base)
    cases = [_link_case(base, rel) for rel in LINK_CASES]
    bad = [c for c in cases if c["crashes"] or c["refusals_not_naming_the_link"] or c["written_outside"]
           or c["written_outside_after_fix"] or not (c["doctor_reported"] or c["link_replaced"])
           or (c["entry"] not in (".pi", ".pi/mesh") and not c["fixed_by_doctor"])
           or not (c["refused"] or c["link_replaced"])]
    f = {"cases": cases, "failing": [c["entry"] for c in bad], "ok": not bad,
         "written_outside": sum(len(c["written_outside"]) + len(c["written_outside_after_fix"]) for c in cases),
         "refusals": sum(len(c["refused"]) for c in cases), "crashes": sum(len(c["crashes"]) for c in cases)}
    f["line"] = (f"symlinks: {len(cases)} mesh entries replaced by links to outside, {len(cases) * 9} operations; "
                 f"refused naming the link {f['refusals']}, crashed {f['crashes']}, files written outside "
                 f"{f['written_outside']}; doctor reported {sum(c['doctor_reported'] for c in cases)}/{len(cases)} "
                 f"(caches replaced instead: {sum(c['link_replaced'] for c in cases)}), "
                 f"repaired {sum(c['fixed_by_doctor'] for c in cases)}/{len(cases) - 2}; failing {f['failing']}")
    return f
