"""Delivery latency: from ``send()`` returning to the recipient's watcher callback.

These recipients are measured, one after the other:

* ``sidecar`` - the product path for Pi: a real ``pi-mesh serve`` joined as the
  recipient; the time runs until its ``{"event": "message"}`` line is read
  from its stdout; each message is then acked (``stage: delivered``), which
  marks it read, as the extension does.
* ``Watcher`` - :class:`pi_mesh_plugin.watcher.Watcher` on the recipient's
  store with ``topics={"inbox"}`` (default debounce, and ``debounce=0``), and
  its polling fallback (``mode="poll"``, 0.1 s interval, default debounce, 40
  messages sent at random phases: expect half an interval plus the debounce).
* ``watchdog`` - a bare watchdog observer on ``inbox/<name>/new``.

The headline is the sidecar when it is there, else the library watcher with
``debounce=0``.  A callback that fires before ``send()`` has returned (the
file is in ``new/`` before the directory fsync completes) counts as 0.
Messages are sent ``GAP`` apart.  The sidecar's recipient acks (marks read)
each message; the library-watcher recipients leave them unread (marking read
moves files, which would wake their watchers with events of their own).
"""

from __future__ import annotations

import os
import random
import threading
import time

from .harness import Stats, perf

GAP = 0.02


def _loop(ctx, alice, bob_name: str, wait, after=None, n: int = 150,
          jitter: float = 0.0) -> Stats:  # wait(timeout) -> fired time
    lat = []
    rng = random.Random(6)
    for i in range(ctx.n(n, 8)):
        t_before = perf()
        alice.send(bob_name, f"ping {i} " * 20)
        t_ret = perf()
        fired = wait(5.0, t_before)
        lat.append(max(0.0, fired - t_ret))
        if after:
            after()
        time.sleep(GAP + rng.uniform(0, jitter))  # jitter: so sends do not fall in step with a poll
    return Stats(lat)


def measure_delivery(ctx) -> tuple[Stats, str, dict]:  # ctx: rows.Ctx
    from .rows import has_module

    proj = ctx.project("delivery")
    (alice,) = proj.join(1, prefix="sender")
    results: dict = {}

    if has_module("pi_mesh_plugin.adapters.servers.sidecar"):
        from .sidecar_client import start

        sc = start(proj, "bob-sidecar")
        try:
            time.sleep(0.3)
            last: dict = {}

            def wait_sc(timeout: float, since: float) -> float:
                ev, t = sc.wait_event(timeout)
                while ev.get("event") != "message":
                    ev, t = sc.wait_event(timeout)
                last["id"] = ev["id"]
                return t

            results["sidecar"] = _loop(ctx, alice, "bob-sidecar", wait_sc,
                                       lambda: sc.request("ack", ids=[last["id"]], stage="delivered"))
        finally:
            sc.close()

    (bob,) = proj.join(1, prefix="bob-lib")
    if has_module("pi_mesh_plugin.watcher"):
        from pi_mesh_plugin.watcher import Watcher

        # the polling fallback (no inotify, no NOTIFY): about half an interval plus the debounce
        for label, kw in (("Watcher(debounce=0)", {"debounce": 0.0}), ("Watcher(default debounce)", {}),
                          ("Watcher(polling fallback, poll_interval=0.1 s, default debounce)",
                           {"mode": "poll", "poll_interval": 0.1})):
            fired: list[float] = []
            ev = threading.Event()

            def cb(topics: frozenset, fired=fired, ev=ev) -> None:
                if "inbox" in topics:
                    fired.append(perf())
                    ev.set()

            w = Watcher(bob.store, cb, topics={"inbox"}, **kw).start()
            try:
                time.sleep(0.2)
                poll = kw.get("mode") == "poll"
                results[label] = _loop(ctx, alice, bob.agent, _waiter(fired, ev, label), n=40 if poll else 150,
                                       jitter=0.1 if poll else 0.0)
            finally:
                w.stop()
            results[label + " mode"] = w.mode

    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    fired2: list[float] = []
    ev2 = threading.Event()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:  # type: ignore[no-untyped-def]
            path = getattr(event, "dest_path", "") or event.src_path
            if event.event_type in ("created", "moved") and str(path).endswith(".json"):
                fired2.append(perf())
                ev2.set()

    obs = Observer()
    obs.schedule(Handler(), os.path.join(proj.mesh_dir, "inbox", bob.agent, "new"), recursive=False)
    obs.start()
    try:
        time.sleep(0.2)
        results["watchdog on new/"] = _loop(ctx, alice, bob.agent, _waiter(fired2, ev2, "watchdog"))
    finally:
        obs.stop()
        obs.join(5)

    head = "sidecar" if "sidecar" in results else ("Watcher(debounce=0)" if "Watcher(debounce=0)" in results
                                                   else "watchdog on new/")
    from .harness import fmt_time

    how = "; ".join(f"{k}: median {fmt_time(v.median)}, p99 {fmt_time(v.p99)}" for k, v in results.items()
                    if isinstance(v, Stats))
    data = {k: (v.to_dict() if isinstance(v, Stats) else v) for k, v in results.items()}
    return results[head], f"headline = {head}. {how}. Messages {GAP * 1e3:.0f} ms apart; the sidecar acks each (marks it read).", data


def _waiter(fired: list[float], ev: threading.Event, label: str):
    def wait(timeout: float, since: float) -> float:
        deadline = perf() + timeout
        while True:
            later = [t for t in list(fired) if t >= since]
            if later:
                fired.clear()
                ev.clear()
                return later[0]
            ev.clear()
            if not ev.wait(max(0.0, deadline - perf())):
                raise TimeoutError(f"{label} did not fire within 5 s")
    return wait
