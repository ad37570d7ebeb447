"""``pi-mesh doctor`` for the file store: find (and with ``fix``, mend) what crashes and hands leave behind.

Findings are dicts ``{"kind", "path", "detail", "fixed"}``; kinds:
``stale-agent`` (registered, owner gone), ``expired-claim``, ``dead-claim``
(holder gone), ``bad-file`` (fails to parse or validate; fixed by moving it to
``bad/``, never by deleting it), ``temp-file`` (a write that never finished:
its message was never delivered, so removing it loses nothing acknowledged),
``orphan-inbox`` (unread mail for an agent that is not registered; reported, kept).
"""

from __future__ import annotations

import os
import time

from ...clock import parse_iso
from ...names import is_valid_name
from . import fsio
from .inbox import received

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from . import FileStore


def examine(store: FileStore, fix: bool) -> list[dict]:
    found: list[dict] = []

    def add(kind: str, path: str, detail: str, fixed: bool = False) -> None:
        found.append({"kind": kind, "path": os.path.relpath(path, store.root), "detail": detail, "fixed": fixed})

    mesh = store.mesh_dir
    if not os.path.isdir(mesh):
        return found
    # agents
    agents: dict[str, dict] = {}
    adir = store.registry.directory
    for fn in fsio.listdir(adir):
        full = os.path.join(adir, fn)
        name = fn[:-5]
        try:
            if not fn.endswith(".json") or not is_valid_name(name):
                raise ValueError("is not named <agent name>.json")
            rec = store.registry.read(name)
        except (ValueError, OSError) as e:
            _bad(add, full, str(e), fix, os.path.join(mesh, "bad", "agents"))
            continue
        if rec is None:
            continue
        agents[name] = rec
        if not store.is_live(rec):
            fixed = False
            if fix:
                fixed = store.unregister(name, rec["session"])
            add("stale-agent", full, f"{name} (pid {rec['pid']} on {rec['host']}) is gone", fixed)
    # reservations
    rdir = store.claims.directory
    index = store.claims.index.current()
    index.rescan()
    for fn, why in index.bad.items():
        _bad(add, os.path.join(rdir, fn), why, fix, os.path.join(mesh, "bad", "reservations"))
    now = time.time()
    for rec in index.all():
        full = os.path.join(rdir, rec["id"] + ".json")
        try:
            expired = parse_iso(rec["expires"]) <= now
        except ValueError:
            expired = True
        if expired:
            add("expired-claim", full, f"{rec['holder']}'s claim on {rec['path']} expired {rec['expires']}")
        elif not store._holder_live(rec["holder"], rec.get("session")):
            add("dead-claim", full, f"{rec['holder']} holds {rec['path']} but is gone")
    if fix:
        gone = {r["id"] for r in store.claims.drop_dead()}
        for f in found:
            if f["kind"] in ("expired-claim", "dead-claim") and os.path.basename(f["path"])[:-5] in gone:
                f["fixed"] = True
    # inboxes
    idir = store.inboxes.directory
    for name in fsio.listdir(idir):
        box = os.path.join(idir, name)
        if not is_valid_name(name) or not os.path.isdir(box):
            _bad(add, box, "is not an inbox directory", fix, os.path.join(mesh, "bad", "inbox"))
            continue
        for sub in ("new", "cur"):
            warnings: list[str] = []
            if fix:
                store.inboxes._read_dir(name, sub, warnings)  # moves bad files to bad/
                for w in warnings:
                    add("bad-file", os.path.join(box, sub), w, True)
            else:
                for fn in fsio.listdir(os.path.join(box, sub)):
                    full = os.path.join(box, sub, fn)
                    try:
                        from ...schema import validate

                        if not fn.endswith(".json") or not is_valid_name(fn[:-5]):
                            raise ValueError("is not named <message id>.json")
                        received(validate("message", fsio.read_json(full), full), fn, name)  # as the reader
                    except (ValueError, OSError) as e:
                        add("bad-file", full, str(e))
        tmpd = os.path.join(box, "tmp")
        for fn in fsio.listdir(tmpd):
            _temp_file(store, add, os.path.join(tmpd, fn), fn, fix,
                       "an unfinished delivery (never in new/, never acknowledged)")
        unread = len(fsio.listdir(os.path.join(box, "new")))
        if name not in agents and unread:
            add("orphan-inbox", box, f"{unread} unread message(s) for {name}, who is not registered (mail kept)")
    # temp files of atomic writes
    for sub in ("agents", "reservations", "index"):
        d = os.path.join(mesh, sub)
        try:
            names = [n for n in os.listdir(d) if n.startswith(".tmp-")]
        except OSError:
            continue
        for fn in names:
            _temp_file(store, add, os.path.join(d, fn), fn, fix, "an unfinished atomic write")
    return found


def _temp_file(store: FileStore, add: Callable[..., None], full: str, name: str, fix: bool, detail: str) -> None:
    """Report a temp file whose writer is gone (removed with ``fix``: it was never acknowledged)."""
    if store.temp_is_stale(full, name):
        if fix:
            os.unlink(full)
        add("temp-file", full, detail, fix)


def _bad(add: Callable[..., None], full: str, why: str, fix: bool, dest: str) -> None:
    fixed = False
    if fix:
        try:
            fsio.move_aside(full, dest)
            fixed = True
        except OSError:
            pass
    add("bad-file", full, why, fixed)
