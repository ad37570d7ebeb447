"""The project id that keys every row, so projects sharing a server never see each other.

It comes from ``[store] project_id`` / ``$PI_MESH_PROJECT_ID`` (passed in by
the caller), else from the git remote of the project root, normalised
(``git@github.com:acme/repo.git`` and ``https://github.com/acme/repo`` are
both ``github.com/acme/repo``, so checkouts in different places on different
machines meet), else the root path.
"""

from __future__ import annotations

import os
import re
import subprocess
from urllib.parse import urlsplit

from ... import paths as P

CASE_INSENSITIVE_HOSTS = frozenset({"github.com", "gitlab.com", "bitbucket.org", "codeberg.org"})


def normalise_remote(remote: str) -> str:
    """A git remote URL as a stable project id: ``host/owner/repo`` (no scheme, user, port or ``.git``)."""
    r = remote.strip()
    m = re.match(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$", r)  # scp-like: git@host:owner/repo.git
    if "://" not in r and m and not re.match(r"^[A-Za-z]:[\\/]", r):
        host, path = m.group(1), m.group(2)
    elif "://" in r:
        parts = urlsplit(r)
        if parts.scheme == "file" or not parts.hostname:
            return os.path.normpath(parts.path or r)
        host, path = parts.hostname, parts.path
    else:
        return os.path.normpath(os.path.abspath(r))  # a local path remote: shared by nobody else anyway
    path = path.strip("/").removesuffix(".git").rstrip("/")
    host = host.lower()
    if host in CASE_INSENSITIVE_HOSTS:  # Acme/Repo and acme/repo are one repository there
        path = path.lower()
    return f"{host}/{path}"


def derive_project_id(root: str) -> str:
    """The project id of ``root``: its git remote (``origin``, else the first), normalised; else the real root path."""
    try:
        out = subprocess.run(["git", "-C", root, "remote", "-v"], capture_output=True, text=True, timeout=10,
                             check=False)
        remotes: dict[str, str] = {}
        for line in out.stdout.splitlines():
            bits = line.split()
            if len(bits) >= 2 and bits[0] not in remotes:
                remotes[bits[0]] = bits[1]
        if remotes:
            name = "origin" if "origin" in remotes else min(remotes)
            return normalise_remote(remotes[name])
    except (OSError, subprocess.SubprocessError):
        pass
    return P.normalise_root(root)
