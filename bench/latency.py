"""Delivery latency: from ``send()`` returning to the recipient's watcher callback.

The recipient's watcher runs in its own thread, as it does in the sidecar.
If :mod:`pi_mesh_plugin.watcher` exists it is used; otherwise ``watchdog``
(inotify on Linux) watches the recipient's ``new/`` directly - the row's note
says which.  The watcher may fire before ``send()`` returns (the file is in
``new/`` before the directory fsync completes); such a delivery counts as 0.
"""

from __future__ import annotations

import os
import threading
import time

from .harness import Stats, perf


def measure_delivery(ctx) -> tuple[Stats, str]:  # ctx: rows.Ctx
    proj = ctx.project("delivery")
    alice, bob = proj.join(2)
    new_dir = os.path.join(proj.mesh_dir, "inbox", bob.agent, "new")
    fired: list[float] = []
    ev = threading.Event()

    def callback(*_: object) -> None:
        fired.append(perf())
        ev.set()

    stop, how = _start_watcher(proj, bob, new_dir, callback)
    try:
        time.sleep(0.2)  # let the watch be established
        lat = []
        for _ in range(ctx.n(200, 10)):
            ev.clear()
            fired.clear()
            alice.send(bob.agent, "ping " * 20)
            t_ret = perf()
            if not ev.wait(5.0):
                raise TimeoutError("the watcher did not fire within 5 s")
            lat.append(max(0.0, fired[0] - t_ret))
            bob.read_inbox()  # keep new/ small, as a recipient would
            time.sleep(0.005)
            ev.clear()
    finally:
        stop()
    return Stats(lat), how


def _start_watcher(proj, bob, new_dir: str, callback):  # -> (stop, description)
    try:
        from pi_mesh_plugin import watcher as pw  # a colleague's module, when it has landed
    except ImportError:
        pw = None
    if pw is not None and hasattr(pw, "bench_hook"):
        return pw.bench_hook(bob, callback)  # pragma: no cover - adapted once the module lands
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:  # type: ignore[no-untyped-def]
            if event.event_type in ("created", "moved"):
                path = getattr(event, "dest_path", "") or event.src_path
                if str(path).endswith(".json"):
                    callback()

    obs = Observer()
    obs.schedule(Handler(), new_dir, recursive=False)
    obs.start()

    def stop() -> None:
        obs.stop()
        obs.join(5)

    return stop, f"watchdog {type(obs).__name__} on inbox/<name>/new directly (pi_mesh_plugin.watcher not present)"
