"""Inboxes: ``inbox/<name>/{tmp,new,cur,bad}/``, Maildir-style.

A message is written and fsynced, then given its name in ``new/`` (see
:mod:`.delivery`): it is delivered exactly when it appears there, complete.
A broadcast is one file hard-linked into every recipient's ``new/`` (``to`` is
``*``).  Reading moves a name to ``cur/`` (``ls new/`` is the unread mail).  A
file that fails to parse or validate is moved to ``bad/`` with a warning -
never deleted, never crashing the reader.  Ids sort by time, so a directory
listing sorted by name is the arrival order.
"""

from __future__ import annotations

import os

from ...names import is_valid_name, validate_name
from ...schema import validate
from ..addressing import BROADCAST, check_addressed, check_broadcast
from . import delivery, fsio, links

TYPE_CHECKING = False  # on the per-call hook path: typing-only imports are skipped at run time
if TYPE_CHECKING:
    from collections.abc import Callable

SUBDIRS = ("tmp", "new", "cur")


def received(rec: dict, file_name: str, inbox: str) -> dict:
    """A validated message record found as ``file_name`` in ``inbox``'s directories, as its reader gets it.

    Raises ``ValueError`` if it does not belong there: another id than its name, another recipient,
    or ``*`` without ``broadcast``.  A broadcast's ``to`` becomes the reader's own name.
    """
    to = rec["to"]
    if rec["id"] != file_name[:-5] or (to != inbox and (to != BROADCAST or rec.get("broadcast") is not True)):
        raise ValueError(f"holds message {rec['id']!r} for {to!r}")
    if to == BROADCAST:
        rec["to"] = inbox
    return rec


class Inboxes:
    def __init__(self, mesh_dir: str) -> None:
        self.directory = os.path.join(mesh_dir, "inbox")
        self._seen: set[str] = set()

    def dir(self, name: str) -> str:
        """``inbox/<name>``, refused if it is a symlink (one ``lstat``; see :mod:`.links`)."""
        d = os.path.join(self.directory, validate_name(name, "inbox name"))
        links.not_a_link(d)
        return d

    def ensure(self, name: str) -> str:
        d = self.dir(name)
        for sub in SUBDIRS:
            fsio.ensure_dir(os.path.join(d, sub))
        return d

    def deliver(self, messages: list[dict]) -> None:
        check_addressed(messages)
        items = []
        for m in messages:
            validate("message", m, "message")  # on write as on read: never deliver what a reader would set aside
            items.append((self._inbox(m["to"]), validate_name(m["id"], "message id") + ".json", fsio.dumps(m)))
        self._retrying([m["to"] for m in messages], lambda: delivery.deliver(items))

    def deliver_linked(self, message: dict, recipients: list[str]) -> None:
        """A broadcast: ``message`` (``to`` ``*``, ``broadcast`` true) as one file named in each recipient's inbox."""
        check_broadcast(message)
        validate("message", message, "message")
        recipients = list(dict.fromkeys(recipients))
        if not recipients:
            return
        boxes = [self._inbox(r) for r in recipients]
        name, data = validate_name(message["id"], "message id") + ".json", fsio.dumps(message)
        self._retrying(recipients, lambda: delivery.deliver_linked(boxes, name, data))

    def _inbox(self, name: str) -> str:
        # An inbox this process has made or seen is not made again for every message; if it has vanished
        # since, opening its new/ (or tmp/) fails before anything is named, and the delivery is retried.
        return self.dir(name) if name in self._seen else self.ensure(name)

    def _retrying(self, recipients: list[str], deliver: Callable[[], None]) -> None:
        try:
            deliver()
        except FileNotFoundError:
            if not any(r in self._seen for r in recipients):
                raise
            self._seen.clear()  # nothing was named yet (every directory is opened first): start again
            for r in recipients:
                self.ensure(r)
            deliver()
        self._seen.update(recipients)

    def _read_dir(self, name: str, sub: str, warnings: list[str]) -> list[dict]:
        d = os.path.join(self.dir(name), sub)
        links.not_a_link(os.path.join(self.dir(name), "bad"))  # where bad files go: never a link
        prefix = os.path.join(d, "")
        out = []
        for fn in sorted(fsio.listdir(d)):
            full = prefix + fn
            try:
                if not fn.endswith(".json") or not is_valid_name(fn[:-5]):
                    raise ValueError("is not named <message id>.json")
                out.append(received(validate("message", fsio.read_json(full, 1 << 20), full), fn, name))
            except FileNotFoundError:
                continue  # another reader moved it
            except (ValueError, OSError) as e:
                why = str(e).split(": ", 1)[-1] if full in str(e) else str(e)
                try:
                    dest = fsio.move_aside(full, os.path.join(self.dir(name), "bad"))
                    warnings.append(f"moved {full} to {dest}: it {why}")
                except OSError as e2:
                    warnings.append(f"skipped {full}: it {why} (could not move it aside: {e2.strerror})")
        return out

    def fetch(self, name: str, unread_only: bool, warnings: list[str]) -> list[tuple[dict, bool]]:
        out = [(r, False) for r in self._read_dir(name, "new", warnings)]
        if not unread_only:
            out += [(r, True) for r in self._read_dir(name, "cur", warnings)]
            out.sort(key=lambda x: x[0]["id"])
        return out

    def mark_read(self, name: str, ids: list[str]) -> int:
        d = self.dir(name)
        new, cur = os.path.join(d, "new", ""), os.path.join(d, "cur", "")
        links.not_a_link(new[:-1])
        links.not_a_link(cur[:-1])  # a rename into a linked cur/ would move mail out of the mesh
        n = 0
        rename = os.rename
        for i in ids:
            fn = validate_name(i, "message id") + ".json"
            try:
                rename(new + fn, cur + fn)
                n += 1
            except FileNotFoundError:
                continue
        if n:
            fds = [os.open(os.path.join(d, sub), os.O_RDONLY | os.O_DIRECTORY) for sub in ("cur", "new")]
            try:
                fsio.fsync_all(fds)
            finally:
                for fd in fds:
                    os.close(fd)
        return n

    def get(self, name: str, msg_id: str) -> dict | None:
        """One message of ``name`` by id (unread or read), ``None`` if absent or unreadable."""
        from ...schema import validate

        fn = validate_name(msg_id, "message id") + ".json"
        for sub in ("new", "cur"):
            links.not_a_link(os.path.join(self.dir(name), sub))
            try:
                return received(validate("message", fsio.read_json(os.path.join(self.dir(name), sub, fn))), fn, name)
            except (OSError, ValueError):
                continue
        return None

    def unread_count(self, name: str) -> int:
        return sum(1 for fn in fsio.listdir(os.path.join(self.dir(name), "new")) if fn.endswith(".json"))

    def set_aside(self, name: str, session: str) -> int:
        """Move unread mail of an old session to ``orphaned/<session>/``; returns how many."""
        src = os.path.join(self.dir(name), "new")
        dest = os.path.join(self.dir(name), "orphaned", validate_name(session, "session"))
        moved = 0
        for fn in fsio.listdir(src):
            fsio.move_aside(os.path.join(src, fn), dest)
            moved += 1
        if moved:
            fsio.fsync_dir(src)
            fsio.fsync_dir(dest)
        return moved

    def names(self) -> list[str]:
        return sorted(n for n in fsio.listdir(self.directory) if is_valid_name(n))
