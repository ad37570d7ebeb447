"""Hostile input: path aliases against the guard, traversal names, files placed by hand, stale locks.

Each public function takes a scratch directory and returns figures with ``ok`` and ``line`` (the
torture runner prints and records them; ``tests/test_hostile_*.py`` asserts on them).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import unicodedata

from .common import env, kill9, new_project, spawn, wait_line


@contextlib.contextmanager
def _chdir(d: str):
    old = os.getcwd()
    os.chdir(d)
    try:
        yield
    finally:
        os.chdir(old)


def _blocked(mesh, path: str, cwd: str, kind: str = "file") -> tuple[bool, bool]:
    """(blocked by Mesh.check, blocked by the decide) for an edit of ``path``."""
    from pi_mesh_plugin.host import decide
    from pi_mesh_plugin.records import ToolCall

    by_check = mesh.check(path, "edit", cwd=cwd, kind=kind) is not None
    by_guard = decide(mesh, ToolCall(tool="edit", paths=(path,), cwd=cwd, input={"path": path})) is not None
    return by_check, by_guard


def _hook_denies(root: str, path: str, cwd: str) -> bool:
    """Run ``pi-mesh hook claude-code`` for a Write of ``path`` as agent ``intruder``; True if it denies."""
    import json as _json
    import sys

    from .common import REPO, worker_env

    event = {"session_id": "torture", "transcript_path": None, "cwd": cwd, "permission_mode": "acceptEdits",
             "hook_event_name": "PreToolUse", "tool_name": "Write",
             "tool_input": {"file_path": path, "content": "x = 2\n"}, "tool_use_id": "toolu_torture"}
    env = {**worker_env(), "PI_MESH_AGENT": "intruder", "PI_MESH_ROOT": root}
    r = subprocess.run([sys.executable, "-m", "pi_mesh_plugin", "hook", "claude-code"], input=_json.dumps(event),
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False)
    if r.returncode == 0 and r.stdout == "":
        return False  # allowed
    out = _json.loads(r.stdout)["hookSpecificOutput"]  # anything else (an error block) fails the scenario
    assert out["permissionDecision"] == "deny" and "reserved by agent holder" in out["permissionDecisionReason"], r
    return True


# -- path aliases --------------------------------------------------------------------
def alias_forms(root: str, base: str, target: str) -> list[tuple[str, str]]:
    """``(spelling, cwd)`` pairs that all name ``root/target`` (``target``: project-relative, no symlinks)."""
    name = os.path.basename(root)
    parts = target.split("/")
    out = [
        (target, root), ("./" + target, root), (root + "/" + target, root), ("@" + target, root),
        ("@" + root + "/" + target, root), ("~/" + name + "/" + target, root),
        (target.replace("/", "//"), root), ("//" + root.lstrip("/") + "/" + target, root),
        (root + "//" + target, root), ("/" + "/".join(("." + "/" + p) for p in (root.strip("/") + "/" + target).split("/")), root),
        ("src/../" + target, root), ("/".join(parts[:-1]) + "/../" + "/".join(parts[-2:]), root),
        ("../" + name + "/" + target, root), (root + "/src/../" + target, root),
        ("nonexistent/../" + target, root), ("src/nonexistent/../../" + target, root),
        ("./src/./" + "/".join(parts[1:]), root), (target, root + "/"),
        ("/".join(parts[1:]), os.path.join(root, parts[0])), ("../" + target, os.path.join(root, "src")),
        ("../../" + target, os.path.join(root, "src", "sub")),
        (parts[-1], os.path.join(root, *parts[:-1])), ("./" + parts[-1], os.path.join(root, *parts[:-1])),
        ("x/../" * 400 + target, root), ("./" * 2200 + target, root),  # both longer than PATH_MAX
        ("src/" + "y" * 300 + "/../" + "/".join(parts[1:]), root),     # a component longer than NAME_MAX
        ("/proc/self/cwd/" + target, root),
        (os.path.relpath(os.path.join(root, target), base), base),   # from outside the project
    ]
    return out


def _mount_fusefat(base: str) -> str | None:
    """A real case-insensitive filesystem: a FAT image mounted with fusefat (needs root, mkfs.vfat, fusefat)."""
    if os.geteuid() != 0 or not (shutil.which("mkfs.vfat") and shutil.which("fusefat")) \
            or not os.path.exists("/dev/fuse"):
        return None
    img, mnt = os.path.join(base, "fat.img"), os.path.join(base, "fatmnt")
    os.makedirs(mnt, exist_ok=True)
    try:
        with open(img, "wb") as f:
            f.truncate(16 << 20)
        subprocess.run(["mkfs.vfat", img], check=True, capture_output=True, timeout=30)
        subprocess.run(["fusefat", "-o", "rw+", img, mnt], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return mnt


def _unmount(mnt: str) -> None:
    for cmd in (["fusermount", "-u", mnt], ["umount", mnt]):
        if subprocess.run(cmd, capture_output=True, check=False).returncode == 0:
            return


def aliases(base: str) -> dict:
    from pi_mesh_plugin import paths as P
    from pi_mesh_plugin.errors import OutsideProject
    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.store.files import FileStore

    base = os.path.join(base, "aliases")
    os.makedirs(base)
    root = new_project(base, "proj")
    os.makedirs(os.path.join(root, "src", "auth"))
    with open(os.path.join(root, "src", "auth", "login.py"), "w") as f:
        f.write("x = 1\n")
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    os.makedirs(os.path.join(root, "src", nfc))
    with open(os.path.join(root, "src", nfc, "x.py"), "w") as f:
        f.write("x = 1\n")
    outside = os.path.join(base, "outside")
    os.makedirs(outside)
    os.symlink("src/auth", os.path.join(root, "lnk_auth"))
    os.symlink("src/a.py", os.path.join(root, "lnk_file.py"))
    os.symlink("chain2", os.path.join(root, "chain1"))
    os.symlink("src/auth", os.path.join(root, "chain2"))
    os.symlink(os.path.join(root, "src", "auth"), os.path.join(base, "outside_to_auth"))
    os.symlink("../../src/auth", os.path.join(root, "src", "sub", "up_to_auth"))
    os.symlink(outside, os.path.join(root, "ext"))  # inside -> outside

    with open(os.path.join(root, "hooks.toml"), "w") as f:
        f.write('[defaults]\nguard = ["edit", "write", "bash"]\n')  # shell commands are guarded too
    holder = Mesh(root, "holder", cwd=root)
    holder.join()
    holder.reserve(["src/auth/"], "dir claim")
    holder.reserve(["src/a.py"], "file claim")
    holder.reserve([f"src/{nfc}/"], "unicode dir claim")
    intruder = Mesh(root, "intruder", cwd=root)
    intruder.join()

    tried = 0
    bypasses: list[str] = []

    def expect_block(path: str, cwd: str, kind: str = "file") -> None:
        nonlocal tried
        for via, blocked in zip(("check", "guard"), _blocked(intruder, path, cwd, kind)):
            tried += 1
            if not blocked:
                bypasses.append(f"{via}: {path[:120]!r} (cwd {cwd})")

    with env(HOME=base), _chdir(root):
        for target in ("src/auth/login.py", "src/auth/new_file.py", "src/a.py", f"src/{nfc}/x.py"):
            for spelling, cwd in alias_forms(root, base, target):
                expect_block(spelling, cwd)
        # symlinks into the claimed tree (directories, chains, from outside the project, files)
        for spelling in ("lnk_auth/login.py", "lnk_auth/new.py", "chain1/login.py", "@lnk_auth/login.py",
                         os.path.join(base, "outside_to_auth", "login.py"), "src/sub/up_to_auth/login.py",
                         "./lnk_auth//login.py", "lnk_file.py", "@lnk_file.py", root + "/lnk_file.py"):
            expect_block(spelling, root)
        expect_block("../outside_to_auth/login.py", root)  # climbs out, comes back through a symlink
        # NFD spelling of an NFC claim
        expect_block(f"src/{nfd}/x.py", root)
        expect_block(f"src/{nfd}/new.py", root)
        # directory targets: the claimed dir itself, with trailing slashes, and its parents
        for spelling in ("src/auth/", "src/auth//", "src/auth/.", "src/", "./src/", "lnk_auth/", ".", root,
                         root + "/", "src/sub/up_to_auth/"):
            expect_block(spelling, root, "dir")
        expect_block("src/auth", root)  # a file-kind target named like the claimed directory

    # shell commands writing through aliases (guard includes bash; the parser sees literal targets)
    from pi_mesh_plugin.host import decide
    from pi_mesh_plugin.records import Block, ToolCall

    shell_tried = 0
    for cmd in ("echo x > src/auth/login.py", "echo x > ./lnk_auth/login.py", "cd src && sed -i s/x/y/ auth/login.py",
                "cd lnk_auth; touch new.py", "cp /etc/hostname src//auth/", "mv src/a.py /tmp/moved.py",
                "bash -c 'echo > src/../src/auth/login.py'", f"echo x > src/{nfd}/x.py",
                f"echo x > {root}/chain1/login.py", "rm -rf src", "git checkout -- src/auth",
                "echo x | tee -a lnk_file.py", f"cd {base} && echo x > outside_to_auth/login.py",
                "(cd src/sub && echo x > up_to_auth/new.py)"):
        shell_tried += 1
        tried += 1
        # the parser's answer: anything but a Block let the command through (an Allow runs it in the sandbox)
        if not isinstance(decide(intruder, ToolCall(tool="bash", input={"command": cmd}, cwd=root)), Block):
            bypasses.append(f"bash: {cmd!r}")
    shell_allowed = [c for c in ("echo x > src/b.py", "cat src/auth/login.py", "ls -la src/auth")
                     if isinstance(decide(intruder, ToolCall(tool="bash", input={"command": c}, cwd=root)), Block)]

    # the same spellings through the real per-call hook process (Claude Code's PreToolUse wire format)
    hook_tried = 0
    for spelling, cwd in alias_forms(root, base, "src/auth/login.py")[:24] + [
            ("lnk_auth/login.py", root), ("chain1/login.py", root), ("lnk_file.py", root),
            (os.path.join(base, "outside_to_auth", "login.py"), root), (f"src/{nfd}/x.py", root)]:
        if len(spelling) > 1000 or spelling.startswith(("~", "/proc/self/cwd")):
            continue  # ~ and /proc/self/cwd depend on the hook process's HOME and cwd, checked in-process above
        hook_tried += 1
        tried += 1
        if not _hook_denies(root, spelling, cwd):
            bypasses.append(f"hook: {spelling!r} (cwd {cwd})")

    # claims made through aliases block the plain spelling
    reverse_tried = reverse_bypass = 0
    for spelling in ("lnk_auth/", "chain1/", os.path.join(base, "outside_to_auth") + "/", "@./src//auth/",
                     "src/sub/up_to_auth/", "lnk_file.py", f"src/{nfd}/", "src/../src/auth/"):
        probe = {"lnk_file.py": "src/a.py", f"src/{nfd}/": f"src/{nfc}/x.py"}.get(spelling, "src/auth/login.py")
        with Mesh(root, "second", cwd=root) as h2:
            h2.join()
            holder.release()
            h2.reserve([spelling], "claimed through an alias")
            for via, blocked in zip(("check", "guard"), _blocked(intruder, probe, root)):
                reverse_tried += 1
                if not blocked:
                    reverse_bypass += 1
                    bypasses.append(f"{via}: claim via {spelling!r} did not block {probe!r}")
            h2.leave()
    holder.reserve(["src/auth/"], "dir claim")
    holder.reserve(["src/a.py"], "file claim")

    # negative controls: different files that must not be blocked
    false_blocks = [f"bash: {c}" for c in shell_allowed]
    for spelling in ("src/authx/f.py", "src/auth-old.py", "src/b.py", "src/AUTH/login.py", "ext/f.py",
                     os.path.join(outside, "f.py"), "src/sub/c.py"):
        if any(_blocked(intruder, spelling, root)):
            false_blocks.append(spelling)
    if _hook_denies(root, "src/b.py", root):
        false_blocks.append("hook: src/b.py")
    inside_to_outside_refused = False
    try:
        holder.reserve(["ext/"], "through a symlink that leaves the project")
    except OutsideProject:
        inside_to_outside_refused = True
    intruder.close()
    holder.close()

    # mixed case on a case-insensitive filesystem
    case: dict = {"filesystem": None}
    mnt = _mount_fusefat(base)
    if mnt is not None:
        try:
            froot = os.path.join(mnt, "Proj")
            os.makedirs(os.path.join(froot, "src", "auth"))
            with open(os.path.join(froot, "src", "auth", "login.py"), "w") as f:
                f.write("x = 1\n")
            # FAT has no hard links, which the file store needs (link(2) for exclusive creation), so the
            # store lives on the ordinary filesystem while the project tree being guarded is on FAT.
            sroot = os.path.join(base, "fatstore")
            os.makedirs(sroot)
            h = Mesh(froot, "holder", cwd=froot, store=FileStore(sroot))
            h.join()
            h.reserve(["src/auth/"], "claim on a case-insensitive filesystem")
            i = Mesh(froot, "intruder", cwd=froot, store=FileStore(sroot))
            i.join()
            case = {"filesystem": "vfat (fusefat, loop image)", "detected_case_insensitive": i.casefold,
                    "forms": 0, "bypasses": 0}
            for spelling, cwd in (("SRC/Auth/LOGIN.PY", froot), ("src/AUTH/login.py", froot),
                                  (os.path.join(mnt, "pROJ", "src", "auth", "login.py"), froot),
                                  ("Login.py", os.path.join(froot, "src", "AUTH")),
                                  (os.path.join(mnt, "PROJ", "SRC", "AUTH", "NEW.py"), mnt),
                                  ("./Src//Auth/../AUTH/login.py", froot)):
                for via, blocked in zip(("check", "guard"), _blocked(i, spelling, cwd)):
                    case["forms"] += 1
                    tried += 1
                    if not blocked:
                        case["bypasses"] += 1
                        bypasses.append(f"{via} (vfat): {spelling!r}")
            i.close()
            h.close()
        finally:
            _unmount(mnt)
    else:
        # no case-insensitive filesystem can be made here: check the folding logic directly
        case = {"filesystem": "none available: folding logic checked directly", "forms": 0, "bypasses": 0}
        for spelling in ("/P/SRC/Auth/LOGIN.PY", "/p/src/AUTH/login.py", "/P/Src/auth/Login.py"):
            tried += 1
            case["forms"] += 1
            c = P.relative_to_root(spelling, "/p", casefold=True)
            if c is None or not P.covers(P.fold("src/auth", True), P.DIR, c):
                case["bypasses"] += 1
                bypasses.append(f"fold: {spelling}")
    tried += reverse_tried
    f = {"alias_forms_tried": tried, "bypasses": len(bypasses), "bypass_examples": bypasses[:10],
         "via_hook_process": hook_tried, "shell_commands": shell_tried,
         "claims_via_alias_tried": reverse_tried, "false_blocks": false_blocks,
         "inside_to_outside_symlink_claim_refused": inside_to_outside_refused, "case_insensitive": case,
         "known_limits": ["hard links (a second name of the same inode is another path)",
                          "bind mounts and other mount aliases", "writes by programs the guard never sees"]}
    f["ok"] = not bypasses and not false_blocks and inside_to_outside_refused
    f["line"] = (f"aliases: {tried} alias forms tried (check + guard, {hook_tried} via the hook process, "
                 f"{shell_tried} shell commands), "
                 f"bypasses {len(bypasses)}; "
                 f"{reverse_tried} via-alias claims; false blocks {len(false_blocks)}; case-insensitive fs: "
                 f"{case['filesystem']} ({case['forms']} forms, {case['bypasses']} bypasses)")
    return f


# -- names -------------------------------------------------------------------------------
BAD_NAMES = ["../x", "..", ".", "a/b", "/etc/passwd", "", "a\x00b", "\x00", "x" * 65, "x" * 5000, "-x", "_x",
             "x\n", " x", "x ", "~x", "a\\b", "..\\x", "%2e%2e", "ａｄｍｉｎ", "аdmin", "a\u2215b", "a\u2044b",
             "a\u200bb", "é", "e\u0301", ".hidden", "x.json", "a b", "*", "$(id)", "new/../../x"]


# "" means "not given" (own name, or a generated one for join); "*" is the broadcast address of send_message
ALLOWED = {("agent", ""), ("join-name", ""), ("unread_count", ""), ("tool.send_message", "*")}


def _tree(d: str, skip: str) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(d):
        if os.path.abspath(dirpath).startswith(skip):
            dirnames[:] = []
            continue
        for fn in filenames + dirnames:
            full = os.path.join(dirpath, fn)
            st = os.lstat(full)
            out[full] = (st.st_mtime_ns, st.st_size)
    return out


def names(base: str) -> dict:
    """Every bad name is refused as agent, recipient, message id (reply_to, mark_read, store lookups) and as
    inbox/session/reservation id at the store layer; nothing is written outside ``.pi/mesh/``."""
    from pi_mesh_plugin.errors import InvalidName, MeshError
    from pi_mesh_plugin.host import PluginHost
    from pi_mesh_plugin.mesh import Mesh

    base = os.path.join(base, "names")
    os.makedirs(base)
    root = new_project(base, "proj")
    a = Mesh(root, "alice", cwd=root)
    a.join()
    b = Mesh(root, "bob", cwd=root)
    b.join()
    before = _tree(base, os.path.join(root, ".pi", "mesh"))
    store = a.store
    host = PluginHost(a)
    attempts = refused = 0
    accepted: list[str] = []
    crashed: list[str] = []
    for bad in BAD_NAMES:
        ops = {
            "agent": lambda bad=bad: Mesh(root, bad, cwd=root).join(),
            "join-name": lambda bad=bad: Mesh(root, None, cwd=root).join(bad),
            "recipient": lambda bad=bad: a.send(bad, "hi"),
            "reply_to": lambda bad=bad: a.send("bob", "hi", reply_to=bad),
            "mark_read": lambda bad=bad: b.mark_read([bad]),
            "unread_count": lambda bad=bad: a.unread_count(bad),
            "store.inbox": lambda bad=bad: store.fetch(bad),
            "store.get_message": lambda bad=bad: store.get_message("bob", bad),
            "store.mark_read": lambda bad=bad: store.mark_read("bob", [bad]),
            "store.agent": lambda bad=bad: store.get_agent(bad),
            "store.deliver-id": lambda bad=bad: store.deliver([{**_msg("alice", "bob"), "id": bad}]),
            "store.deliver-to": lambda bad=bad: store.deliver([{**_msg("alice", "bob"), "to": bad}]),
            "store.session": lambda bad=bad: store.inboxes.set_aside("bob", bad),
            "tool.send_message": lambda bad=bad: host.call_tool("send_message", {"to": bad, "text": "hi"}),
        }
        for kind, op in ops.items():
            attempts += 1
            try:
                op()
            except (InvalidName, MeshError, ValueError):
                refused += 1
                continue
            except Exception as e:  # noqa: BLE001 - anything else is a crash for this figure
                crashed.append(f"{kind} {bad!r}: {type(e).__name__}: {e}")
                continue
            if (kind, bad) not in ALLOWED:
                accepted.append(f"{kind} {bad!r}")
    # reservation ids only ever come from files: a claim file carrying a traversal id is refused as a bad
    # file, and the writers that delete claims by id (reserve, release, doctor --fix) touch nothing else
    rdir = os.path.join(root, ".pi", "mesh", "reservations")
    for i, bad in enumerate(("../agents/bob", "..", "a/b", "../../../src/a.py", "x\x00y")):
        attempts += 1
        rec = {"schema": 1, "id": bad, "holder": "alice", "session": None, "path": "src/a.py", "kind": "file",
               "reason": "placed", "created": "2000-01-01T00:00:00.000000Z", "expires": "2000-01-01T00:00:01.000000Z"}
        with open(os.path.join(rdir, f"evil{i}.json"), "w") as fh:
            fh.write(json.dumps(rec))
        try:
            a.reserve(["src/b.py"], "after a placed claim")
            a.release()
            store.claims.drop_dead()
            found = a.doctor(fix=True)
            if any(x["kind"] == "bad-file" and x["path"].endswith(f"evil{i}.json") for x in found) \
                    and store.get_agent("bob") is not None:
                refused += 1
            else:
                accepted.append(f"reservation-file id {bad!r}")
        except Exception as e:  # noqa: BLE001
            crashed.append(f"reservation-file id {bad!r}: {type(e).__name__}: {e}")
    after = _tree(base, os.path.join(root, ".pi", "mesh"))
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    mesh_dir = os.path.join(root, ".pi", "mesh")
    strays = [p for p in _tree(mesh_dir, "\x00") if not os.path.realpath(p).startswith(mesh_dir)]
    a.close()
    b.close()
    f = {"bad_names": len(BAD_NAMES), "attempts": attempts, "refused": refused, "accepted": accepted,
         "crashed": crashed, "written_outside_mesh": changed, "links_out_of_mesh": strays}
    f["ok"] = not accepted and not crashed and not changed and not strays
    f["line"] = (f"names: {len(BAD_NAMES)} bad names x {len(ops)} entry points + 5 placed claim ids = {attempts} "
                 f"attempts, refused {refused}, accepted {len(accepted)} (+{attempts - refused - len(accepted) - len(crashed)} meaning 'not given' or broadcast), crashed {len(crashed)}, "
                 f"written outside .pi/mesh {len(changed)}")
    return f


def _msg(frm: str, to: str) -> dict:
    from pi_mesh_plugin.clock import iso, new_id

    return {"schema": 1, "id": new_id(), "from": frm, "to": to, "text": "x", "urgent": False, "reply_to": None,
            "thread": None, "created": iso(time.time())}



# -- files placed by hand ------------------------------------------------------------------
def _as_nobody(fn) -> tuple[str, object]:
    """Run ``fn()`` in a forked child with uid/gid 65534 (root can read a mode-000 file; nobody cannot).
    Returns ("ok", result) or ("error", text) or ("unavailable", why)."""
    import json as _json

    if os.geteuid() != 0:
        return "unavailable", "not root: cannot switch to an unprivileged user"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            out = ("ok", fn())
        except BaseException as e:  # noqa: BLE001
            out = ("error", f"{type(e).__name__}: {e}")
        os.write(w, _json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    kind, value = _json.loads(data)
    return kind, value


def hand_placed_files(base: str) -> dict:
    # its own directory under /tmp, open to the unprivileged reader below (a pytest or mkdtemp parent is 0700)
    base = tempfile.mkdtemp(prefix="pi-mesh-placed-")
    os.chmod(base, 0o755)
    try:
        return _hand_placed_files(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _hand_placed_files(base: str) -> dict:
    from pi_mesh_plugin.clock import new_id
    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.store.files import fsio

    root = new_project(base, "proj")
    mesh_dir = os.path.join(root, ".pi", "mesh")
    alice = Mesh(root, "alice", cwd=root)
    alice.join(pid=0)   # heartbeat-only owners: the unprivileged child may not read our /proc details
    bob = Mesh(root, "bob", cwd=root)
    bob.join(pid=0)
    alice.reserve(["src/a.py"], "a real claim")
    valid = [alice.send("bob", f"valid {i}").id for i in range(3)]
    new = os.path.join(mesh_dir, "inbox", "bob", "new")
    cur = os.path.join(mesh_dir, "inbox", "bob", "cur")
    read_one = alice.send("bob", "already read").id
    bob.mark_read([read_one])
    good = fsio.dumps(_msg("alice", "bob"))
    placed: dict[str, str] = {}

    def place(kind: str, path: str) -> None:
        placed[kind] = path

    p = os.path.join(new, new_id() + ".json")
    with open(p, "wb") as f:
        f.write(good[: len(good) // 2])
    place("truncated JSON", p)
    p = os.path.join(new, new_id() + ".json")
    with open(p, "w") as f:
        f.write('{"schema": 1, "hello": "world"}')
    place("wrong schema", p)
    p = os.path.join(new, new_id() + ".json")
    with open(p, "wb") as f:
        f.writelines(b" " * (1 << 20) for _ in range(50))
    place("50 MB file", p)
    p = os.path.join(new, new_id() + ".json")
    os.symlink(os.path.join(cur, read_one + ".json"), p)
    place("symlink in place of a message", p)
    p = os.path.join(new, new_id() + ".json")
    os.makedirs(p)
    place("directory in place of a message", p)
    p = os.path.join(new, "notes.txt")
    with open(p, "w") as f:
        f.write("hello\n")
    place("file with a foreign name", p)
    p = os.path.join(new, new_id() + ".json")
    m = _msg("alice", "alice")
    m["id"] = os.path.basename(p)[:-5]
    with open(p, "wb") as f:
        f.write(fsio.dumps(m))
    place("message filed in the wrong inbox", p)
    p = os.path.join(new, new_id() + ".json")
    m = _msg("alice", "bob")
    m["id"] = os.path.basename(p)[:-5]
    with open(p, "wb") as f:
        f.write(fsio.dumps(m))
    os.chmod(p, 0)
    unreadable = p
    # registry and reservations
    adir, rdir = os.path.join(mesh_dir, "agents"), os.path.join(mesh_dir, "reservations")
    with open(os.path.join(adir, "carol.json"), "w") as f:
        f.write('{"schema": 1, "name": "car')
    place("truncated agent record", os.path.join(adir, "carol.json"))
    os.makedirs(os.path.join(adir, "dave.json"))
    place("directory in place of an agent record", os.path.join(adir, "dave.json"))
    os.symlink(os.path.join(adir, "bob.json"), os.path.join(adir, "eve.json"))
    place("symlink in place of an agent record", os.path.join(adir, "eve.json"))
    rid = new_id()
    with open(os.path.join(rdir, rid + ".json"), "w") as f:
        f.write(f'{{"schema": 1, "id": "{rid}", "path": 7}}')
    place("wrong-schema reservation", os.path.join(rdir, rid + ".json"))
    rid = new_id()
    with open(os.path.join(rdir, rid + ".json"), "wb") as f:
        f.truncate(50 << 20)
    place("50 MB reservation", os.path.join(rdir, rid + ".json"))
    with open(os.path.join(mesh_dir, "inbox", "zed"), "w") as f:
        f.write("not a directory\n")
    place("file in place of an inbox directory", os.path.join(mesh_dir, "inbox", "zed"))

    # 1. doctor (no fix) reports each
    found = alice.doctor(fix=False)
    reported_paths = {os.path.join(root, x["path"]) for x in found}
    unreported = [k for k, v in placed.items() if v not in reported_paths]
    # 2. an unprivileged reader meets the unreadable file (and everything else in new/)
    for dirpath, dirnames, filenames in os.walk(mesh_dir):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            if full != unreadable and not os.path.islink(full):
                os.chmod(full, 0o777 if os.path.isdir(full) else 0o666)
    os.chmod(mesh_dir, 0o777)

    def nobody_reads() -> dict:
        with Mesh(root, "bob", cwd=root) as nb:
            doc = nb.doctor(fix=False)
            got = [x.id for x in nb.read_inbox()]
            return {"got": got, "warnings": list(nb.warnings),
                    "doctor_unreadable": any(unreadable.endswith(x["path"]) for x in doc)}

    status, res = _as_nobody(nobody_reads)
    unreadable_result: dict = {"tested": status == "ok", "status": status}
    got: list[str] = []
    warnings: list[str] = []
    if status == "ok":
        got += res["got"]  # type: ignore[index]
        warnings += res["warnings"]  # type: ignore[index]
        unreadable_result["doctor_reported"] = res["doctor_unreadable"]  # type: ignore[index]
        unreadable_result["quarantined"] = not os.path.exists(unreadable) and \
            any(unreadable in w for w in warnings)
    else:
        unreadable_result["why"] = res
    # 3. the owner reads whatever is left; nothing crashes
    crashed = None
    try:
        got += [x.id for x in bob.read_inbox()]
        warnings += bob.warnings
        listed = {a.name for a in bob.agents()}
        bob.check("src/a.py")
        claims = bob.reservations()
        warnings += bob.warnings
        alice.send("bob", "still works")
    except Exception as e:  # noqa: BLE001
        crashed = f"{type(e).__name__}: {e}"
        listed, claims = set(), []
    bad_dir = os.path.join(mesh_dir, "inbox", "bob", "bad")
    kept = len(os.listdir(bad_dir)) if os.path.isdir(bad_dir) else 0
    found_after = alice.doctor(fix=True)
    still = alice.doctor(fix=False)
    alice.close()
    bob.close()
    f = {"placed": len(placed) + 1, "kinds": sorted(placed) + ["unreadable message (mode 000)"],
         "crashed": crashed, "valid_delivered": len(set(valid) & set(got)), "valid_sent": len(valid),
         "reader_warnings": len(warnings), "warnings_sample": warnings[:3], "quarantined_in_bad": kept,
         "doctor_unreported": unreported, "unreadable": unreadable_result,
         "agents_listed": sorted(listed), "real_claim_kept": any(c.path == "src/a.py" for c in claims),
         "doctor_fix_findings": len(found_after),
         "bad_files_after_fix": sum(1 for x in still if x["kind"] == "bad-file")}
    inbox_bad = 7 + (1 if status == "ok" else 0)
    f["ok"] = (crashed is None and f["valid_delivered"] == len(valid) and not unreported
               and kept >= inbox_bad and f["real_claim_kept"] and "bob" in listed
               and (status != "ok" or (unreadable_result["quarantined"] and unreadable_result["doctor_reported"]))
               and f["bad_files_after_fix"] == 0)
    f["line"] = (f"hand-placed files: {f['placed']} kinds placed; crashes {0 if crashed is None else 1}; valid "
                 f"messages delivered {f['valid_delivered']}/{len(valid)}; quarantined {kept}; doctor missed "
                 f"{len(unreported)}; unreadable file "
                 + ("tested as uid 65534" if status == "ok" else f"NOT tested ({res})"))
    return f


# -- stale locks -------------------------------------------------------------------------------
def stale_locks(base: str) -> dict:
    """A process holding a mesh lock is SIGKILLed; the next operation needing that lock must not wedge."""
    from pi_mesh_plugin.mesh import Mesh

    base = os.path.join(base, "locks")
    os.makedirs(base)
    root = new_project(base, "proj")
    a = Mesh(root, "alice", cwd=root)
    a.join()
    a.send("alice", "x")  # feed + inbox exist
    ops = {
        "reservations.lock": lambda: (a.reserve(["src/"], "after a stale lock", ttl=60), a.release()),
        "agents.lock": lambda: Mesh(root, "bob", cwd=root).join(),
        "feed.lock": lambda: a.store.feed.rotate(),
    }
    res = {}
    ok = True
    for lock, op in ops.items():
        p = spawn("lock_holder", stdout=subprocess.PIPE, root=root, lock=lock)
        wait_line(p, "LOCKED")
        kill9(p)
        t = time.monotonic()
        try:
            op()
            res[lock] = round(time.monotonic() - t, 3)
            ok = ok and res[lock] < 2
        except Exception as e:  # noqa: BLE001
            res[lock] = f"{type(e).__name__}: {e}"
            ok = False
    # a lock file left with garbage in it (filelock keeps the file; content is irrelevant)
    with open(os.path.join(root, ".pi", "mesh", "locks", "reservations.lock"), "w") as f:
        f.write("garbage from a crashed tool\n")
    t = time.monotonic()
    a.reserve(["src/"], "after a garbage lock file", ttl=60)
    res["garbage lock file"] = round(time.monotonic() - t, 3)
    a.close()
    f = {"seconds_to_next_op": res, "ok": ok and res["garbage lock file"] < 2}
    f["line"] = "stale locks: " + ", ".join(
        f"{k} {v}s" if isinstance(v, float) else f"{k} FAILED {v}" for k, v in res.items())
    return f
