"""Maildir delivery: a message appears in ``inbox/<name>/new/`` complete and durable, or not at all.

Two ways, the same promise and the same crash points (``temp-write``, ``file-fsync``, ``rename``,
``dir-fsync``; see :mod:`.fsio`):

* **unnamed** (Linux, where the file system supports ``O_TMPFILE``): the message is written into
  an inode with no name, opened in ``new/`` itself; it is fsynced, then given its name by
  ``linkat(2)`` through ``/proc/self/fd``, then ``new/`` is fsynced.  Nothing touches ``tmp/``:
  a writer killed at any step leaves no file behind (the kernel frees an unnamed inode when its
  last descriptor closes, and at mount after a power cut).  ``linkat`` never replaces a name.
* **rename** (elsewhere, and as the fallback): the classic Maildir steps - write
  ``tmp/<id>.<pid>.tmp``, fsync, rename into ``new/``, fsync ``new/``.  A writer killed before
  the rename leaves its temp file, which ``doctor`` finds and removes.

The unnamed way is tried first; the first time the file system refuses it (``EOPNOTSUPP`` and
kin on ``O_TMPFILE``, ``/proc`` absent, or the process's first link through ``/proc`` failing,
as a sandbox may make it) this process uses rename from then on.  It does the
same durable work with fewer directory changes (one directory entry, not a create, a rename and
a removal) - the margin that keeps ``send()`` within 1.15x of a bare loop (its benchmark target).

Several messages at once are written first, made durable together, then named, then their
directories made durable together (:func:`.fsio.sync_batch`).  A broadcast is *one* message
(:func:`deliver_linked`): one file, written and fsynced once, then given a name in every
recipient's ``new/`` (hard links: ``ls -l`` shows their count), then the directories made durable
together - one inode created instead of one per recipient.  A recipient reading it moves only its
own name to ``cur/``.  Files are never changed in place, so the names never disagree.

Durability rests on what journalled file systems give (ext4 with its journal, XFS, btrfs): a
directory's fsync makes a link made in it durable, with the link count of the inode linked.
"""

from __future__ import annotations

import errno
import os

from . import fsio
from . import modes
from .fsio import _CREATE, _unlink_quiet, _write_fd, crash_point, sync_batch

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW  # a symlinked new/ is refused, never followed
_TMPFILE = getattr(os, "O_TMPFILE", 0) | os.O_WRONLY
# what open(O_TMPFILE) gives where the file system or kernel lacks it
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOTSUP}
_unnamed: list[bool | None] = [None]  # None: not tried yet in this process
_proven = [False]  # an unnamed file has been named in this process


def unnamed_supported() -> bool:
    """Whether this process delivers through unnamed files (decided on first use)."""
    if _unnamed[0] is None:
        _unnamed[0] = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
    return bool(_unnamed[0])


def use_unnamed(on: bool | None) -> None:
    """Force the rename way (``False``), or with ``None`` decide again on next use (for tests)."""
    _unnamed[0] = on
    _proven[0] = False


def deliver(items: list[tuple[str, str, bytes]]) -> None:
    """Deliver each ``(inbox_dir, file_name, data)`` into ``inbox_dir/new/file_name``.

    Raises ``FileNotFoundError`` before anything is delivered when an inbox directory is missing.
    An error names the message file (the first, of several), never ``.`` or a descriptor.
    """
    try:
        _deliver(items)
    except OSError as e:
        raise fsio.named(e, f"{items[0][0]}/new/{items[0][1]}") from None


def _deliver(items: list[tuple[str, str, bytes]]) -> None:
    if _unnamed[0] is not False and unnamed_supported():
        done = _deliver_unnamed_one(*items[0]) if len(items) == 1 else _deliver_unnamed(items)
        if done:
            return
    if len(items) == 1:
        _deliver_renamed_one(*items[0])
    else:
        _deliver_renamed(items)


def _refused(e: OSError) -> bool:
    """An ``O_TMPFILE`` open the file system does not support: switch this process to rename."""
    if e.errno in _NO_TMPFILE:
        _unnamed[0] = False
        return True
    return False


def _name(fd: int, dfd: int, name: str) -> bool:
    """Give the unnamed file ``fd`` its name in ``dfd`` (linkat through /proc, never replacing a name).

    False - and the rename way from then on - if the process's very first attempt fails with anything
    but ``EEXIST``: a sandbox or kernel that will not link through ``/proc``.  The rename way then
    meets any real error (a vanished inbox, a full disk) itself.  Once one has worked, errors are raised.
    """
    try:
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dfd)  # linkat(AT_SYMLINK_FOLLOW)
    except OSError as e:
        if _proven[0] or e.errno == errno.EEXIST:
            raise
        _unnamed[0] = False
        return False
    _proven[0] = True
    return True


def _write_durable(fd: int, data: bytes) -> None:
    """Write all of ``data`` and fsync (crash points ``temp-write``, ``file-fsync``)."""
    n = os.write(fd, data)
    if n != len(data):
        _write_fd(fd, data[n:])
    crash_point("temp-write")
    os.fsync(fd)
    crash_point("file-fsync")


def _durable_temp(inbox: str, name: str, data: bytes) -> str:
    """``data`` written and fsynced as ``inbox/tmp/<name>.<pid>.tmp`` (removed again on failure); its path."""
    tmp = f"{inbox}/tmp/{name}.{fsio._pid[0]}.tmp"
    fd = os.open(tmp, _CREATE, modes.FILE)
    modes.fix_fd(fd)
    try:
        try:
            _write_durable(fd, data)
        finally:
            os.close(fd)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    return tmp


def _tmpfile(dfd: int) -> int:
    """An unnamed file in the directory ``dfd``, with the mesh's file mode (:mod:`.modes`)."""
    fd = os.open(".", _TMPFILE, modes.FILE, dir_fd=dfd)
    modes.fix_fd(fd)
    return fd


def _deliver_unnamed_one(inbox: str, name: str, data: bytes) -> bool:
    """One message (every ``send``), without a batch's bookkeeping.  False: not supported here."""
    dfd = os.open(f"{inbox}/new", _DIR)
    try:
        try:
            fd = _tmpfile(dfd)
        except OSError as e:
            if _refused(e):
                return False
            raise
        try:
            _write_durable(fd, data)
            if not _name(fd, dfd, name):
                return False
        finally:
            os.close(fd)
        crash_point("rename")
        os.fsync(dfd)
        crash_point("dir-fsync")
        return True
    finally:
        os.close(dfd)


def _deliver_unnamed(items: list[tuple[str, str, bytes]]) -> bool:
    dfds: dict[str, int] = {}
    fds: list[int] = []
    try:
        staged = []
        for inbox, name, data in items:
            dfd = dfds.get(inbox)
            if dfd is None:
                dfd = dfds[inbox] = os.open(f"{inbox}/new", _DIR)
            try:
                fd = _tmpfile(dfd)
            except OSError as e:
                if not fds and _refused(e):
                    return False
                raise
            fds.append(fd)
            staged.append((fd, dfd, name))
            _write_fd(fd, data)
            crash_point("temp-write")
        sync_batch(fds)
        crash_point("file-fsync")
        for fd, dfd, name in staged:
            if not _name(fd, dfd, name):
                return False  # only ever the first: nothing is named yet
            crash_point("rename")
        for fd in fds:
            os.close(fd)
        fds = []
        sync_batch(list(dfds.values()))
        crash_point("dir-fsync")
        return True
    finally:
        for fd in fds:
            os.close(fd)
        for dfd in dfds.values():
            os.close(dfd)


def _deliver_renamed_one(inbox: str, name: str, data: bytes) -> None:
    tmp = _durable_temp(inbox, name, data)
    try:
        os.rename(tmp, f"{inbox}/new/{name}")
    except BaseException:
        _unlink_quiet(tmp)
        raise
    crash_point("rename")
    fsio.fsync_dir(f"{inbox}/new")
    crash_point("dir-fsync")


def _deliver_renamed(items: list[tuple[str, str, bytes]]) -> None:
    staged: list[tuple[str, str]] = []
    fds: list[int] = []
    try:
        for inbox, name, data in items:
            tmp = os.path.join(inbox, "tmp", f"{name}.{fsio._pid[0]}.tmp")
            fd = os.open(tmp, _CREATE, modes.FILE)
            modes.fix_fd(fd)
            fds.append(fd)
            staged.append((tmp, os.path.join(inbox, "new", name)))
            _write_fd(fd, data)
            crash_point("temp-write")
        sync_batch(fds)
        crash_point("file-fsync")
        for fd in fds:
            os.close(fd)
        fds = []
        dirs: list[str] = []
        for tmp, final in staged:
            os.rename(tmp, final)
            crash_point("rename")
            d = os.path.dirname(final)
            if d not in dirs:
                dirs.append(d)
        staged = []
        dir_fds = [os.open(d, _DIR) for d in dirs]
        try:
            sync_batch(dir_fds)
        finally:
            for fd in dir_fds:
                os.close(fd)
        crash_point("dir-fsync")
    finally:
        for fd in fds:  # only on failure before the renames
            os.close(fd)
        for tmp, _ in staged:
            _unlink_quiet(tmp)


def deliver_linked(inboxes: list[str], name: str, data: bytes) -> None:
    """One file named ``name`` in the ``new/`` of every inbox (distinct directories), durably.

    Every ``new/`` is opened before anything is written, so a missing inbox raises
    ``FileNotFoundError`` before any name appears.  An inbox on another file system than the
    first (a hand-made symlink) cannot share the inode: it gets its own copy, delivered after.
    """
    try:
        _deliver_linked(inboxes, name, data)
    except OSError as e:
        raise fsio.named(e, f"{inboxes[0]}/new/{name}") from None


def _deliver_linked(inboxes: list[str], name: str, data: bytes) -> None:
    dfds: list[int] = []
    try:
        for inbox in inboxes:
            dfds.append(os.open(f"{inbox}/new", _DIR))
        apart = None
        if _unnamed[0] is not False and unnamed_supported():
            apart = _linked_unnamed(dfds, name, data)
        if apart is None:
            apart = _linked_renamed(inboxes[0], dfds, name, data)
        sync_batch([dfd for i, dfd in enumerate(dfds) if i not in apart])
        crash_point("dir-fsync")
        if apart:
            _deliver([(inboxes[i], name, data) for i in apart])
    finally:
        for dfd in dfds:
            os.close(dfd)


def _linked_unnamed(dfds: list[int], name: str, data: bytes) -> list[int] | None:
    """Write and fsync one unnamed file, link it into each directory; ``None``: no O_TMPFILE here."""
    try:
        fd = _tmpfile(dfds[0])
    except OSError as e:
        if _refused(e):
            return None
        raise
    try:
        _write_durable(fd, data)
        if not _name(fd, dfds[0], name):
            return None
        crash_point("rename")
        return [i + 1 for i in _link_each(f"/proc/self/fd/{fd}", name, dfds[1:])]
    finally:
        os.close(fd)


def _linked_renamed(first_inbox: str, dfds: list[int], name: str, data: bytes) -> list[int]:
    """The same through a temp file in the first inbox's ``tmp/``, removed once every link is made."""
    tmp = _durable_temp(first_inbox, name, data)
    try:
        return _link_each(tmp, name, dfds)
    finally:
        _unlink_quiet(tmp)


def _link_each(src: str, name: str, dfds: list[int]) -> list[int]:
    """Link ``src`` as ``name`` into each directory; the indexes of those on another file system."""
    apart = []
    for i, dfd in enumerate(dfds):
        try:
            os.link(src, name, dst_dir_fd=dfd)  # linkat(AT_SYMLINK_FOLLOW): never replaces a name
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            apart.append(i)
            continue
        crash_point("rename")
    return apart
