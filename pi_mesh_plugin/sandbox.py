"""The kernel enforces the claims for shell commands: each guarded command runs in a bubblewrap namespace.

:func:`wrap_command` turns a shell command into one that runs it inside a
mount namespace made by ``bwrap`` (Debian package ``bubblewrap``) where every
path claimed by another live agent is bind-mounted read-only; the rest of the
project, ``.pi/mesh`` and everything outside the project are as on the host.
A write under a claim then fails with "Read-only file system" (a rename or
delete of the claimed path itself with "Device or resource busy"), whatever
program makes it - ``python3 -c``, a build tool, a script.  When the
command's standard error shows such a refusal, a note is printed after it
naming the claims (those its error output mentions, else all of them), their
holders and reasons, so the model knows whom to ask.

How a claim becomes a mount:

* an existing claimed file or directory: ``--ro-bind P P`` on its real path
  (symlinks resolved, so a write through any link into it is refused too);
* a claimed path that does not exist yet (a file about to be created): its
  nearest existing ancestor is mounted read-only and each existing entry of
  that ancestor mounted writable again, so the claimed name cannot be created
  - nor, in that one directory, any other new name (the note says so);
* ``.pi/mesh`` is mounted writable last, so the mesh works inside.

Only claims of the project's own mesh count (not of a superproject).  Limits
(also in README): a claim made while a command runs is not seen by that
command; background processes started inside keep the namespace they started
in after the command ends; a hard link made before the claim, from outside
the claimed directory, still reaches the file.

Where bwrap cannot run - absent, user namespaces refused, not Linux, no
``/bin/bash`` - :func:`unavailable` says why, and shell commands are checked
by the parser alone (the join output, ``doctor`` and ``/mesh`` say so once).
``sandbox = "off"`` in hooks.toml (or ``PI_MESH_SANDBOX=off``) turns it off.

This module is on the per-call path: standard library only, no subprocess.
The probe (one real ``bwrap`` run) is cached per boot in ``.pi/mesh/index``.
"""

from __future__ import annotations

import os
import sys

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .mesh import Mesh
    from .records import Reservation

BASH = "/bin/bash"
REFUSALS = "Read-only file system|Device or resource busy"
MAX_ENTRIES = 2000  # entries of one directory made writable again around a claim that does not exist yet

# Run inside bwrap by bash: the command is eval'd in this same shell (no second bash), its stderr also copied
# by tee into a file on a tmpfs private to this namespace (nothing to clean up).  At exit (a trap, so an `exit`
# in the command is covered) the copy is read once tee has drained - polled each millisecond (a read with a
# timeout on a pty master: no process), at most 0.2 s, so a background process that keeps stderr open
# never holds the command up - and when it shows a refusal, the note goes
# to stderr: the claims whose path it mentions, else all of them.
_INNER = r"""_pm_cmd=$1 _pm_head=$2 _pm_tail=$3 _pm_f=$4/stderr
shift 4; _pm_claims=("$@"); set --
exec 9>&2 2> >(exec tee -- "$_pm_f" >&9)
_pm_tee=$!
_pm_note() {
  _pm_s=$?
  exec 2>&9
  _pm_i=0 _pm_z=
  while kill -0 "$_pm_tee" 2>/dev/null && [ "$_pm_i" -lt 200 ]; do
    [ -n "$_pm_z" ] || exec {_pm_z}<>/dev/ptmx 2>/dev/null || exec {_pm_z}<> <(:)
    read -r -t 0.001 -u "$_pm_z"; _pm_i=$((_pm_i + 1))
  done
  if [ -s "$_pm_f" ] && grep -qE '""" + REFUSALS + r"""' "$_pm_f"; then
    _pm_hit= _pm_all=
    set -- "${_pm_claims[@]}"
    while [ $# -ge 2 ]; do _pm_all="$_pm_all
$2"; if grep -qF -- "$1" "$_pm_f"; then _pm_hit="$_pm_hit
$2"; fi; shift 2; done
    printf '%s%s\n%s\n' "$_pm_head" "${_pm_hit:-$_pm_all}" "$_pm_tail" >&9
  fi
  exit "$_pm_s"
}
trap _pm_note EXIT
eval "$_pm_cmd"
"""


def _disabled(mesh: Mesh) -> bool:
    return (os.environ.get("PI_MESH_SANDBOX", "").lower() in ("off", "0", "no", "false")
            or mesh.config.sandbox == "off")


def unavailable(mesh: Mesh | None = None) -> str | None:
    """``None`` when shell commands can run in the sandbox here, else why not (one line)."""
    if mesh is not None and _disabled(mesh):
        return "the sandbox is turned off (sandbox = \"off\" in hooks.toml or PI_MESH_SANDBOX=off)"
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    bwrap = _which("bwrap")
    if bwrap is None:
        return "bwrap (bubblewrap) is not installed"
    if not os.access(BASH, os.X_OK):
        return f"{BASH} is missing"
    return _probe(bwrap, mesh.local_dir if mesh is not None else None)


def _which(name: str) -> str | None:
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


_probed: dict = {}


def _probe(bwrap: str, cache_dir: str | None) -> str | None:
    """Run bwrap once (a read-only bind, as a wrapped command does); cached for this boot and binary."""
    try:
        st = os.stat(bwrap)
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
    except OSError:
        st, boot = None, ""
    key = [bwrap, st.st_ino if st else 0, st.st_mtime_ns if st else 0, boot, os.getuid()]
    if repr(key) in _probed:
        return _probed[repr(key)]  # type: ignore[no-any-return]
    cache = os.path.join(cache_dir, "index", "sandbox.json") if cache_dir else None
    if cache and st is not None:
        try:
            from .store.files.fsio import read_json

            got = read_json(cache)
            if got.get("key") == key and (got.get("why") is None or isinstance(got.get("why"), str)):
                _probed[repr(key)] = got.get("why")
                why: str | None = got.get("why")
                return why
        except (OSError, ValueError, AttributeError):
            pass
    why = _run_probe(bwrap)
    _probed[repr(key)] = why
    if cache and st is not None and os.path.isdir(os.path.dirname(cache)):
        try:
            from .jsonc import dumps
            from .store.files.fsio import write_atomic

            write_atomic(cache, dumps({"key": key, "why": why}).encode(), durable=False)
        except OSError:
            pass
    return why


def _run_probe(bwrap: str) -> str | None:
    r, w = os.pipe()
    try:
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, w, 1),
                   (os.POSIX_SPAWN_DUP2, w, 2), (os.POSIX_SPAWN_CLOSE, r)]
        pid = os.posix_spawn(bwrap, [bwrap, "--dev-bind", "/", "/", "--ro-bind", "/tmp", "/tmp", "--",
                                     BASH, "-c", "true"], os.environ, file_actions=actions)
    except OSError as e:
        os.close(r)
        os.close(w)
        return f"bwrap cannot be started ({e.strerror})"
    os.close(w)
    out = b""
    with os.fdopen(r, "rb") as f:
        out = f.read(2000)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    said = " ".join(out.decode("utf-8", "replace").split())[:200] or f"exit {os.waitstatus_to_exitcode(status)}"
    return f"bwrap cannot make a namespace here ({said})"


# -- the wrapped command -------------------------------------------------------------------------------
def others_claims(mesh: Mesh) -> list[Reservation]:
    """The live claims of every agent but this one, in the mesh's project."""
    return [r for r in mesh.reservations() if r.holder != mesh.agent]


def wrap_command(mesh: Mesh, command: str, cwd: str | None = None) -> str | None:
    """``command`` wrapped to run in bwrap with every other live agent's claim read-only, for ``/bin/sh``
    (or bash, zsh) to run in ``cwd``; ``None`` when bwrap cannot run here (see :func:`unavailable`).
    With no claim of another agent the command is returned as it is (nothing to protect)."""
    if unavailable(mesh) is not None:
        return None
    claims = others_claims(mesh)
    if not claims:
        return command
    return wrap_for(mesh.root, mesh.local_dir, claims, command)


def wrap_for(root: str, mesh_dir: str, claims: list[Reservation], command: str) -> str:
    """The bwrap command line protecting ``claims`` (of the project at ``root``) while ``command`` runs."""
    import shlex

    binds, widened = mounts(root, [r.path for r in claims])
    args = ["bwrap", "--dev-bind", "/", "/", "--die-with-parent"]
    for path, writable in binds:
        args += ["--bind" if writable else "--ro-bind", path, path]
    real = os.path.realpath(mesh_dir)
    if os.path.isdir(real):
        args += ["--bind", real, real]
    scratch = _scratch(real)
    args += ["--tmpfs", scratch]  # private to this namespace: the stderr copy, gone with it
    head, tail, *pairs = note(claims, widened)
    args += ["--", BASH, "-c", _INNER, "pi-mesh-sandbox", command, head, tail, scratch, *pairs]
    return " ".join(shlex.quote(a) for a in args)


def _scratch(mesh_dir: str) -> str:
    """An empty directory to mount the namespace's tmpfs on: ``.pi/mesh/index/sandbox``, else (a mesh
    directory that cannot be written) ``/tmp/pi-mesh-sandbox-<uid>``, made 0700 and owned by us."""
    for d in (os.path.join(mesh_dir, "index", "sandbox"), f"/tmp/pi-mesh-sandbox-{os.getuid()}"):
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
            st = os.lstat(d)
        except OSError:
            continue
        import stat

        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
            return d
    from .errors import StoreError

    raise StoreError("no directory to mount the sandbox's scratch space on (.pi/mesh/index is not writable)")


def mounts(root: str, paths: list[str]) -> tuple[list[tuple[str, bool]], list[tuple[str, str]]]:
    """``(real path, writable)`` bind mounts, in the order to make them, that leave each of ``paths``
    (relative to ``root``) read-only; and ``(claimed path, directory made read-only around it)`` for each
    claimed path that does not exist yet."""
    ro: set[str] = set()
    containers: dict[str, str] = {}
    for rel in paths:
        full = root if rel == "." else os.path.join(root, rel)
        if os.path.lexists(full):
            ro.add(os.path.realpath(full))
            continue
        parent = os.path.dirname(full)
        while not os.path.isdir(parent) and parent != os.path.dirname(parent):
            parent = os.path.dirname(parent)
        containers.setdefault(os.path.realpath(parent), rel)
    ops: list[tuple[int, int, str, bool]] = []  # (depth, 0 = writable first, path, writable)
    for p in ro:
        ops.append((p.count("/"), 1, p, False))
    for c in containers:
        ops.append((c.count("/"), 1, c, False))
        try:
            entries = list(os.scandir(c))[:MAX_ENTRIES]
        except OSError:
            entries = []
        for e in entries:
            try:
                if e.is_symlink() or not (e.is_dir() or e.is_file()):
                    continue
            except OSError:
                continue
            if e.path in ro or e.path in containers:
                continue
            ops.append((e.path.count("/"), 0, e.path, True))
    ops.sort()
    out: list[tuple[str, bool]] = []
    seen: set[tuple[str, bool]] = set()
    for _, _, p, w in ops:
        if (p, w) not in seen:
            seen.add((p, w))
            out.append((p, w))
    widened = [(rel, os.path.relpath(c, root) if c != root else ".") for c, rel in containers.items()]
    return out, widened


def note(claims: list[Reservation], widened: list[tuple[str, str]]) -> list[str]:
    """The arguments the inner script turns into the note: header, footer, then (path, line) pairs."""
    head = ("pi-mesh: a write in this command was refused by the sandbox - these paths are reserved by other "
            "agents and read-only for shell commands:")
    lines: list[str] = []
    for r in claims:
        line = f"  {r.shown_path()} - reserved by agent {r.holder}: \"{r.reason}\" (expires {r.expires})"
        lines += [r.path, line]
    for rel, around in widened:
        shown = "the project root" if around == "." else around + "/"
        lines += [rel, f"  (no new file can be made in {shown} during this command: {rel}, reserved, does "
                       f"not exist yet)"]
    holders = sorted({r.holder for r in claims})
    tail = ("Do not work around this. To wait for a claim, join the line: reserve(paths=[...], reason=\"...\", "
            "queue=true); or message the holder: "
            + "; ".join(f"send_message(to=\"{h}\", text=\"...\")" for h in holders) + ".")
    return [head, tail, *lines]


def fallback_notice(mesh: Mesh) -> str | None:
    """The one line saying shell commands are *not* sandboxed here (and why), or ``None`` when they are
    or ``bash`` is not guarded.  Said once: at join, by ``doctor`` and in ``/mesh``."""
    try:
        if not mesh.config.guards("bash"):
            return None
        why = unavailable(mesh)
    except Exception as e:  # noqa: BLE001 - a notice never fails a join
        why = f"{type(e).__name__}: {e}"
    if why is None:
        return None
    return (f"no shell sandbox: {why}; guarded shell commands are checked by the parser alone (python -c, "
            f"scripts and build tools can still write into other agents' claims)")
