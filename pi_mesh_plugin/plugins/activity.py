"""Activity tracking: what each agent has been doing, from the post-call hook.

The built-in plugin's ``pi_mesh_post_tool_call`` hands every finished tool
call here.  Edits (``edit``/``write``, and ``bash`` commands that write files -
the same parser as the shell guard, :mod:`pi_mesh_plugin.shell`),
commits (``git commit`` through ``bash``) and test runs (``pytest``,
``npm test``, ``make test``, ``cargo test``, ``go test`` …) are

* appended to the feed as ``edit``, ``commit`` and ``test`` events (the feed
  is rotated by the store, so it stays bounded);
* counted in the agent's registry record, ``activity``: ``last`` (a one-line
  description of the latest call), ``last_at``, ``files_touched`` (the most
  recent :data:`MAX_FILES`, newest last), ``edits``, ``commits``,
  ``test_runs`` - which ``pi-mesh agents``, ``list_agents`` and the dashboard
  show;
* recorded in the edit ledger (:mod:`pi_mesh_plugin.authorship.ledger`): for
  each file written, this agent and the git blob id of the content the call
  left - what ``pi-mesh whose``, the commit guard and the destructive-git
  guard read.

Other calls only refresh ``last``.  A failed edit or commit is not counted; a
test run is, whatever its outcome (the feed says passed or failed).  The
registry update is a read-modify-write: two calls of the *same* agent
finishing at the same instant may count one of them once too few - it is a
progress display, not an audit log (the feed has every event).  Tracking never
fails a call.
"""

from __future__ import annotations

import os

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..mesh import Mesh
    from ..records import ToolCall

MAX_FILES = 50
MAX_LAST = 200

_TEST_TOOLS = {"pytest", "py.test", "tox", "nox", "jest", "vitest", "mocha", "rspec", "phpunit", "ctest", "karma",
               "ava", "nosetests", "trial", "bats", "playwright", "cypress"}
_JS_PM = {"npm", "pnpm", "yarn", "bun"}
_RUNNERS = {"uv", "poetry", "pipenv", "hatch", "pdm", "rye"}  # `uv run pytest` …


def is_test_run(argv: list[str]) -> bool:
    """Does this command run a test suite?"""
    if not argv:
        return False
    name, args = os.path.basename(argv[0]), argv[1:]
    ops = [a for a in args if not a.startswith("-")]
    if name in _TEST_TOOLS:
        return name not in ("playwright", "cypress") or bool(ops[:1] and ops[0] in ("test", "run"))
    if name.startswith("python") or name in ("coverage",):
        if "-m" in args:
            i = args.index("-m")
            return i + 1 < len(args) and args[i + 1] in ("pytest", "unittest", "nose", "nose2", "tox", "ward")
        if ops[:2] in (["manage.py", "test"], ["setup.py", "test"]):
            return True
        return name == "coverage" and ops[:1] == ["run"] and is_test_run(ops[1:])
    if name in _JS_PM:
        if not ops:
            return False
        if ops[0] in ("test", "t", "tst"):
            return True
        if ops[0] in ("run", "run-script"):
            return len(ops) > 1 and ops[1].startswith("test")
        return name in ("yarn", "pnpm") and ops[0].startswith("test")  # yarn test:unit
    if name in ("npx", "pnpx", "bunx"):
        return is_test_run(ops)
    if name in ("make", "gmake"):
        return any(o == "check" or o.startswith("test") for o in ops)
    if name in ("cargo", "go", "dotnet", "deno", "swift", "mix", "zig"):
        return bool(ops[:1]) and ops[0] in ("test", "nextest")
    if name in ("mvn", "gradle", "gradlew", "./gradlew", "sbt", "lein", "ant"):
        return any(o in ("test", "check", "verify") or o.endswith(":test") for o in ops)
    if name == "bundle":
        return ops[:1] == ["exec"] and is_test_run(ops[1:])
    if name in _RUNNERS:
        return bool(ops[:1]) and ops[0] in ("run", "exec") and is_test_run(ops[1:])
    return False


def is_commit(argv: list[str]) -> bool:
    if not argv or os.path.basename(argv[0]) != "git":
        return False
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in ("-C", "-c", "--git-dir", "--work-tree", "--namespace") else 1
    return i < len(argv) and argv[i] == "commit" and "--dry-run" not in argv[i + 1:]


def _short(text: str, limit: int = MAX_LAST) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def classify(mesh: Mesh, call: ToolCall) -> dict:
    """What a call did: ``{"last": str, "files": [...], "edit": bool, "commit": bool, "test": bool,
    "command": str | None}`` (files canonical, a directory with a trailing ``/``)."""
    out: dict = {"files": [], "edit": False, "commit": False, "test": False, "command": None}
    files: list[str] = out["files"]

    def touch(path: str, kind: str = "file") -> None:
        try:
            c = mesh.canonical(path, call.cwd)
        except Exception:  # noqa: BLE001 - a strange path is simply not listed
            return
        if c is None or c == ".":
            return
        c = c + "/" if kind == "dir" else c
        if c not in files and len(c) <= 4096:
            files.append(c)

    if call.tool == "bash":
        command = (call.input or {}).get("command")
        if not isinstance(command, str):
            out["last"] = "bash"
            return out
        out["command"] = _short(command)
        from ..shell import shell_commands, shell_write_targets

        cmds = shell_commands(command)
        out["commit"] = any(is_commit(c) for c in cmds)
        out["test"] = any(is_test_run(c) for c in cmds)
        for path, kind in shell_write_targets(command, call.cwd):
            touch(path, kind)
        out["edit"] = bool(files)
        what = "commit" if out["commit"] else "tests" if out["test"] else "bash"
        out["last"] = _short(f"{what}: {command}")
        return out
    if call.paths:
        for p in call.paths:
            touch(p)
        out["edit"] = call.tool not in ("read", "view", "grep", "glob", "ls")
        out["last"] = _short(f"{call.tool} {', '.join(files or list(call.paths))}")
        return out
    args = call.input or {}
    hint = args.get("path") or args.get("file_path") or args.get("to") or args.get("paths") or ""
    if isinstance(hint, list):
        hint = ", ".join(str(h) for h in hint)
    out["last"] = _short(f"{call.tool} {hint}".strip())
    return out


def track(mesh: Mesh, call: ToolCall, result: dict | None) -> None:
    """Record one finished call (see the module docstring)."""
    if not mesh.agent:
        return
    from ..clock import iso, now

    ok = bool((result or {}).get("ok", True))
    what = classify(mesh, call)
    edit = what["edit"] and ok
    commit = what["commit"] and ok
    if edit:
        mesh.record("edit", tool=call.tool, paths=what["files"][:20])
    if commit:
        mesh.record("commit", command=what["command"])
    if what["test"]:
        mesh.record("test", command=what["command"], ok=ok)
    rec = mesh.store.get_agent(mesh.agent)
    if rec is None:
        return
    act = dict(rec.get("activity") or {})
    last = what["last"] + ("" if ok else " (failed)")
    act["last"] = _short(last, 500)
    act["last_at"] = iso(now())
    if edit:
        touched = [f for f in act.get("files_touched", []) if f not in what["files"]]
        act["files_touched"] = (touched + what["files"])[-MAX_FILES:]
    for key, hit in (("edits", edit), ("commits", commit), ("test_runs", what["test"])):
        act[key] = int(act.get(key, 0)) + (1 if hit else 0)
    act.setdefault("files_touched", [])
    mesh.store.update_agent(mesh.agent, rec.get("session"), {"activity": act, "last_seen": act["last_at"]})
    if edit:  # last: a failure here is reported by the caller, after the activity is counted
        from ..authorship.ledger import record_writes

        record_writes(mesh, what["files"], call.tool, rec.get("session"))
