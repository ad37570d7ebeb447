"""``pi-mesh doctor`` for the file store: find (and with ``fix``, mend) what crashes and hands leave behind.

Findings are dicts ``{"kind", "path", "detail", "fixed"}``; kinds:
``stale-agent`` (registered, owner gone), ``unjudged-agent`` (not live by its heartbeat, but its owner
lives in another pid namespace that cannot be seen from here: reported, never removed), ``expired-claim``, ``dead-claim``
(holder gone), ``bad-file`` (fails to parse or validate; fixed by moving it to
``bad/``, never by deleting it), ``temp-file`` (a write that never finished:
its message was never delivered, so removing it loses nothing acknowledged),
``unfinished-reserve`` (a claim file of a reserve of several paths killed before its commit marker
was made; never in force; removed by ``fix``), ``orphan-inbox`` (unread mail for an agent that is not registered; reported, kept), ``symlink`` (a
link where the mesh keeps a directory or file, see :mod:`.links`; fixed by moving the link - never
its target - to ``bad/links/``; ``.pi`` and ``.pi/mesh`` themselves are explained, not moved).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ...clock import now as clock_now
from ...clock import parse_iso
from ...errors import SymlinkRefused
from ...liveness import unjudged, verdict
from ...names import is_valid_name
from . import fsio, links
from .inbox import received

if TYPE_CHECKING:
    from collections.abc import Callable

    from . import FileStore


def examine(store: FileStore, fix: bool) -> list[dict]:
    found: list[dict] = []

    def add(kind: str, path: str, detail: str, fixed: bool = False) -> None:
        found.append({"kind": kind, "path": os.path.relpath(path, store.root), "detail": detail, "fixed": fixed})

    mesh = store.mesh_dir
    links_left = _links(store, add, fix)
    if not os.path.isdir(mesh) or os.path.islink(mesh) or os.path.islink(os.path.dirname(mesh)):
        return found
    try:
        _examine(store, add, fix, found)
    except SymlinkRefused as e:  # a link left in place (no --fix): reported above, nothing read through it
        if e.where not in links_left:
            add("symlink", e.where, "is a symlink the mesh did not make; nothing was read through it")
    return found


def _links(store: FileStore, add: Callable[..., None], fix: bool) -> set[str]:
    """Report (with ``fix``, move aside) every symlink where the mesh keeps a directory or file;
    returns those left in place."""
    mesh = store.mesh_dir
    left = set()
    for path, target in links.find_links(mesh):
        top = path in (mesh, os.path.dirname(mesh))
        what = "directory" if os.path.basename(path) != "feed.jsonl" and "." not in os.path.basename(path) \
            else "file"
        fixed = False
        if fix and not top:
            try:
                if path == os.path.join(mesh, "bad"):
                    fsio.move_aside(path, os.path.join(mesh, "bad.links"))
                else:
                    fsio.move_aside(path, os.path.join(mesh, "bad", "links"))
                fixed = True
            except OSError:
                pass
        if not fixed:
            left.add(path)
        if top:
            repair = ("repair: replace the link with a real directory (`rm` the link, then `mkdir`, or `mv` "
                      "the target into its place if its contents are this project's mesh)")
        else:
            repair = (f"repair: `pi-mesh doctor --fix` moves the link (never its target) to .pi/mesh/bad/links/ "
                      f"and the mesh makes a real {what} in its place")
        add("symlink", path, f"is a symlink to {target[:200]!r}, which the mesh did not make and never "
                             f"follows (commands using it are refused); {repair}", fixed)
    if fix:
        store._checked = False  # look again before the next operation
    return left


def _examine(store: FileStore, add: Callable[..., None], fix: bool, found: list[dict]) -> None:
    mesh = store.mesh_dir
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
            judged = verdict(rec, store.heartbeat_ttl)
            if judged != "gone":
                add("unjudged-agent", full, unjudged(rec, judged))
                continue
            fixed = False
            if fix and judged == "gone":
                fixed = store.unregister(name, rec["session"])
            add("stale-agent", full, f"{name} (pid {rec['pid']} on {rec['host']}) is gone", fixed)
    # reservations
    rdir = store.claims.directory
    index = store.claims.index.current()
    index.rescan()
    for fn, why in index.bad.items():
        _bad(add, os.path.join(rdir, fn), why, fix, os.path.join(mesh, "bad", "reservations"))
    for fn, rec in index.pending.items():
        add("unfinished-reserve", os.path.join(rdir, fn), f"{rec['holder']}'s reserve of several paths was "
            f"killed before it committed: this claim on {rec['path']} was never in force", fix)
    now = clock_now()
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
        if os.path.islink(box):
            continue  # reported (and with --fix moved) as a symlink above
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
        aside = sum(store.inboxes.orphaned(name).values())
        if aside:
            add("set-aside-mail", os.path.join(box, "orphaned"), f"{aside} unread message(s) of an earlier session "
                f"of {name} set aside when the name was taken over (kept; `pi-mesh inbox --orphaned --agent {name}` "
                "shows them, `--adopt all` makes them its mail)")
    # temp files of atomic writes
    for sub in ("agents", "reservations", "index"):
        d = os.path.join(mesh, sub)
        names = [n for n in links.entries(d) if n.startswith(".tmp-")]
        for fn in names:
            _temp_file(store, add, os.path.join(d, fn), fn, fix, "an unfinished atomic write")


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
