"""The project id that keys every row, so projects sharing a server never see each other.

It comes from ``[store] project_id`` / ``$PI_MESH_PROJECT_ID`` (passed in by
the caller), else from the git remote of the project root, normalised
(``git@github.com:acme/repo.git`` and ``https://github.com/acme/repo`` are
both ``github.com/acme/repo``, so checkouts in different places on different
machines meet).  A remote that is a local path (``../up``) is resolved against
the repository, as git resolves it, never against the caller's working
directory - so one project is one id whichever folder a process starts in.

A project with no remote gets a random id on first use, stored with the
repository (``<git common dir>/pi-mesh-project-id``, shared by its linked
worktrees; ``.pi/project-id`` outside git): two unrelated projects that happen
to sit at the same path on two machines never share claims and mail.  Where
that file cannot be made, the error asks for ``project_id``.
"""

from __future__ import annotations

import os
import re
import subprocess
from urllib.parse import urlsplit

from ... import paths as P
from ...errors import ConfigError

CASE_INSENSITIVE_HOSTS = frozenset({"github.com", "gitlab.com", "bitbucket.org", "codeberg.org"})
ID_FILE = "pi-mesh-project-id"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,199}$")


def normalise_remote(remote: str, base: str | None = None) -> str:
    """A git remote URL as a stable project id: ``host/owner/repo`` (no scheme, user, port or ``.git``).
    A local path is made absolute against ``base`` (the repository's top level) and resolved."""
    r = remote.strip()
    m = re.match(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$", r)  # scp-like: git@host:owner/repo.git
    if "://" not in r and m and not re.match(r"^[A-Za-z]:[\\/]", r):
        host, path = m.group(1), m.group(2)
    elif "://" in r:
        parts = urlsplit(r)
        if parts.scheme == "file" or not parts.hostname:
            return _local(parts.path or r, base)
        host, path = parts.hostname, parts.path
    else:
        return _local(r, base)  # a local path remote: shared by nobody else anyway
    path = path.strip("/").removesuffix(".git").rstrip("/")
    host = host.lower()
    if host in CASE_INSENSITIVE_HOSTS:  # Acme/Repo and acme/repo are one repository there
        path = path.lower()
    return f"{host}/{path}"


def _local(path: str, base: str | None) -> str:
    full = os.path.join(base, os.path.expanduser(path)) if base else os.path.abspath(path)
    return P.normalise_root(os.path.normpath(full))


def _git(root: str, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def derive_project_id(root: str) -> str:
    """The project id of ``root``: its git remote (``origin``, else the first), normalised; else the id stored
    with the repository, made on first use (see the module docstring)."""
    out = _git(root, "remote", "-v")
    remotes: dict[str, str] = {}
    for line in (out.stdout.splitlines() if out else []):
        bits = line.split()
        if len(bits) >= 2 and bits[0] not in remotes:
            remotes[bits[0]] = bits[1]
    if remotes:
        url = remotes["origin" if "origin" in remotes else min(remotes)]
        base = root
        if "://" not in url and ":" not in url and not os.path.isabs(os.path.expanduser(url)):
            top = _git(root, "rev-parse", "--show-toplevel")  # a relative path: git reads it from the top level
            if top is not None and top.returncode == 0 and top.stdout.strip():
                base = top.stdout.strip()
        return normalise_remote(url, base)
    return stored_project_id(root)


def id_file(root: str) -> str:
    """Where the project's stored id lives: in the git common directory, else ``.pi/project-id``."""
    out = _git(root, "rev-parse", "--git-common-dir")
    if out is not None and out.returncode == 0 and out.stdout.strip():
        common = out.stdout.strip()
        return os.path.join(common if os.path.isabs(common) else os.path.join(root, common), ID_FILE)
    return os.path.join(root, ".pi", "project-id")


def stored_project_id(root: str) -> str:
    """The id stored with the project, made (``local/<32 random hex digits>``) if there is none yet; two
    processes making it at once agree (an exclusive link, the loser reads the winner's)."""
    path = id_file(root)
    ask = "set [store] project_id in hooks.toml (or $PI_MESH_PROJECT_ID) to name this project"
    try:
        return _read_id(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ConfigError(f"cannot read the project id in {path}: {e.strerror}; {ask}") from None
    new = f"local/{os.urandom(16).hex()}"
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, (new + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_id(path)  # another process made it first
        finally:
            os.unlink(tmp)
    except OSError as e:
        raise ConfigError(f"the project at {root} has no git remote and its id cannot be stored in {path} "
                          f"({e.strerror}); {ask}") from None
    return new


def _read_id(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        text = os.read(fd, 256).decode("utf-8", "replace").strip()
    finally:
        os.close(fd)
    if not _ID.match(text):
        raise ConfigError(f"{path} does not hold a project id: remove it (a new one is made) or set "
                          "[store] project_id in hooks.toml")
    return text
