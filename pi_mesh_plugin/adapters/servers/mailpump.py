"""The sidecar's mail pump: push new inbox messages as events, and keep the heartbeat.

A daemon thread wakes on the core's :class:`~pi_mesh_plugin.watcher.Watcher`
(inotify on the file store, LISTEN/NOTIFY on PostgreSQL) with a slow safety
poll, or polls when no watcher works.  Each unread message is pushed once per
session (``_pushed``); marking it read is the extension's ``ack``, not ours.
:class:`MailPump` is mixed into :class:`~pi_mesh_plugin.adapters.servers.sidecar.Sidecar`
and shares its Mesh lock.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .sidecar_protocol import message_event

WATCH_SAFETY_POLL = 2.0
DEFAULT_POLL = 0.25


class MailPump:
    """The pump half of the sidecar (state is set up by the sidecar's ``__init__``)."""

    watch: bool
    poll: float | None
    mesh: Any
    joined: bool
    _lock: threading.RLock
    _pushed: set[str]
    _wake: threading.Event
    _stop: threading.Event
    _pump_thread: threading.Thread | None
    _observer: Any

    if TYPE_CHECKING:
        def emit(self, obj: dict) -> bool: ...

        def warn(self, text: str) -> None: ...

    def _start_watch(self) -> bool:
        """Wake the pump when the inbox changes: the core's :class:`~pi_mesh_plugin.watcher.Watcher`
        (inotify on the file store, LISTEN/NOTIFY on PostgreSQL).  ``False``: poll instead."""
        if not self.watch:
            return False
        import logging

        # watchdog 7 logs a spurious error when an observer is stopped while its inotify read is pending.
        logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
        wake = self._wake
        try:
            from ...watcher import Watcher

            watcher = Watcher(self.mesh.store, lambda topics: wake.set(), topics=("inbox",), debounce=0.001,
                              max_delay=0.05, mode="auto").start()
        except Exception as e:  # noqa: BLE001 - inotify limits, a broken subscription: poll instead
            self.warn(f"cannot watch the inbox ({type(e).__name__}: {e}); polling for new mail instead")
            return False
        if watcher.mode == "poll":  # neither inotify nor notifications here: the pump's own poll will do
            watcher.stop()
            return False
        self._observer = watcher
        return True

    def _start_pump(self) -> None:
        self._stop.clear()
        self._pump_thread = threading.Thread(target=self._pump, name="pi-mesh-pump", daemon=True)
        self._pump_thread.start()

    def _stop_pump(self, wait: bool = False) -> None:
        """Stop the pump; ``wait`` joins it (never while holding the Mesh lock: the pump takes it)."""
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            try:
                self._observer.stop(timeout=5 if wait else 0.5)
            except Exception:  # noqa: BLE001, S110 - stopping a watcher is best effort
                pass
            self._observer = None
        t = self._pump_thread
        if wait and t is not None and t is not threading.current_thread():
            t.join(timeout=5)
        self._pump_thread = None

    def _pump(self) -> None:
        with self._lock:
            watching = self._start_watch()
            ttl = float(self.mesh.config.heartbeat_ttl or 60)
        interval = self.poll if self.poll is not None else (WATCH_SAFETY_POLL if watching else DEFAULT_POLL)
        beat_every = min(max(ttl / 3.0, 0.5), 20.0)
        next_beat = time.monotonic() + beat_every
        while not self._stop.is_set():
            try:
                self._push_new()
            except Exception as e:  # noqa: BLE001 - the pump keeps going; the extension hears about it once
                self.warn(f"pi-mesh sidecar: cannot read the inbox: {type(e).__name__}: {e}")
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + beat_every
                try:
                    with self._lock:
                        if self.joined:
                            self.mesh.heartbeat()
                except Exception as e:  # noqa: BLE001
                    self.warn(f"pi-mesh sidecar: heartbeat failed: {type(e).__name__}: {e}")
            self._wake.wait(min(interval, max(0.05, next_beat - time.monotonic())))
            self._wake.clear()

    def _push_new(self) -> None:
        with self._lock:
            if not self.joined or self._stop.is_set():
                return
            msgs = self.mesh.read_inbox(unread_only=True, peek=True)
        for m in msgs:
            if m.id in self._pushed:
                continue
            self._pushed.add(m.id)
            self.emit(message_event(m))
