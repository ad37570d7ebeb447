"""No symlink the mesh did not make is followed: ``.pi``, ``.pi/mesh`` and every entry beneath.

The file store never makes a symlink.  One found in its place - committed to a repository and
cloned, or made by hand or by a hostile process - would redirect reads (a fake agent or claim
list) and writes (feed lines, message files, directories) outside ``.pi/mesh/``.  So:

* files are opened with ``O_NOFOLLOW`` (:func:`.fsio.read_json`, the feed, the claim index) and
  directories are listed through ``O_DIRECTORY | O_NOFOLLOW`` descriptors (:func:`.fsio.listdir`,
  the ``new/`` a delivery opens);
* directories are made by :func:`ensure_dir`, a walk from the project root that ``lstat``-s every
  component of ``.pi/mesh/...`` and refuses a symlink before anything is made beneath it;
* :func:`check_layout` (once per store object, before its first operation) ``lstat``-s
  ``.pi``, ``.pi/mesh``, its fixed directories and ``feed.jsonl``: about ten ``lstat`` calls;
* an inbox directory is ``lstat``-ed before its first use in a process (:mod:`.inbox`).

A refusal is :class:`~pi_mesh_plugin.errors.SymlinkRefused`, one line naming the link.
``doctor`` lists every link (:func:`find_links`) with its target and the repair; ``doctor --fix``
moves each link (not its target) to ``bad/links/``, after which the mesh makes a real directory
or file in its place.  Symlinks *above* the project (a home directory on another disk) are the
user's business and are followed as usual.
"""

from __future__ import annotations

import errno
import os
from stat import S_ISDIR, S_ISLNK

from ...errors import SymlinkRefused
from . import modes

MESH = os.path.join(".pi", "mesh")
FIXED = ("agents", "inbox", "reservations", "locks", "index", "bad", "feed.jsonl")
INBOX_SUBDIRS = ("tmp", "new", "cur", "bad", "orphaned", "shown")


def split_mesh(path: str) -> tuple[str, list[str]] | None:
    """``(project root, components from .pi on)`` for a path inside a ``.pi/mesh``, else ``None``."""
    sep = os.sep + MESH
    i = path.rfind(sep + os.sep)
    if i == -1:
        if not path.endswith(sep):
            return None
        i = len(path) - len(sep)
    root, rest = path[:i], path[i + 1:]
    return root or os.sep, [c for c in rest.split(os.sep) if c and c != "."]


def ensure_dir(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` that refuses a symlink at ``.pi``, ``.pi/mesh`` or below."""
    parts = split_mesh(path)
    if parts is None:
        try:
            os.makedirs(path, exist_ok=True)
        except FileExistsError:
            raise ValueError(f"{path} exists and is not a directory") from None
        return
    cur, comps = parts
    if not os.path.isdir(cur):
        os.makedirs(cur, exist_ok=True)
    for c in comps:
        cur = os.path.join(cur, c)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            try:
                os.mkdir(cur, modes.DIR if c != ".pi" else 0o777)  # .pi is the project's; below it, the mesh's
                if c != ".pi":
                    modes.fix_dir(cur)
                continue
            except FileExistsError:
                st = os.lstat(cur)  # made by another process meanwhile: look again
        if S_ISLNK(st.st_mode):
            raise SymlinkRefused(cur)
        if not S_ISDIR(st.st_mode):
            raise ValueError(f"{cur} exists and is not a directory")


def not_a_link(path: str) -> None:
    """Raise :class:`SymlinkRefused` if ``path`` is a symlink (absent is fine)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if S_ISLNK(st.st_mode):
        raise SymlinkRefused(path)


def check_layout(mesh_dir: str) -> None:
    """Refuse a symlinked ``.pi``, ``.pi/mesh``, fixed directory or feed (the first one found)."""
    not_a_link(os.path.dirname(mesh_dir))
    not_a_link(mesh_dir)
    for name in FIXED:
        not_a_link(os.path.join(mesh_dir, name))


def refused(e: OSError, path: str) -> OSError:
    """The error to raise for ``e`` met opening ``path`` with ``O_NOFOLLOW``: a refusal if ``path`` is a
    symlink (``ELOOP``; with ``O_DIRECTORY`` Linux says ``ENOTDIR``), else ``e`` itself."""
    if e.errno == errno.ELOOP:
        return SymlinkRefused(path)
    if e.errno == errno.ENOTDIR:
        try:
            if S_ISLNK(os.lstat(path).st_mode):
                return SymlinkRefused(path)
        except OSError:
            pass
    return e


def find_links(mesh_dir: str) -> list[tuple[str, str]]:
    """Every symlink the mesh would meet: ``(path, its target)``, for ``doctor``.

    Looks at ``.pi``, ``.pi/mesh``, each fixed entry, each inbox and its subdirectories, and the
    entries of ``index/``, ``locks/`` and the feed's generations.  Records that are symlinks
    (a message, a claim, an agent file) are reported by ``doctor`` as bad files already."""
    out: list[tuple[str, str]] = []

    def look(p: str) -> bool:
        """True if ``p`` is a real directory to look into."""
        try:
            st = os.lstat(p)
        except OSError:
            return False
        if S_ISLNK(st.st_mode):
            try:
                target = os.readlink(p)
            except OSError:
                target = "?"
            out.append((p, target))
            return False
        return S_ISDIR(st.st_mode)

    if not look(os.path.dirname(mesh_dir)) or not look(mesh_dir):
        return out
    for name in FIXED:
        look(os.path.join(mesh_dir, name))
    for name in entries(mesh_dir):
        if name.startswith("feed.") and name.endswith(".jsonl") and name != "feed.jsonl":
            look(os.path.join(mesh_dir, name))
    for sub in ("index", "locks"):
        for name in entries(os.path.join(mesh_dir, sub)):
            look(os.path.join(mesh_dir, sub, name))
    inbox = os.path.join(mesh_dir, "inbox")
    for name in entries(inbox):
        box = os.path.join(inbox, name)
        if look(box):
            for sub in INBOX_SUBDIRS:
                look(os.path.join(box, sub))
    return out


def entries(d: str) -> list[str]:
    """Every entry name of the directory ``d`` (dot files too); ``[]`` if absent or a symlink."""
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return []
    try:
        return sorted(os.listdir(fd))
    finally:
        os.close(fd)
