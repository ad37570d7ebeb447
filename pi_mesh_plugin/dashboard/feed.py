"""The dashboard's feed pane: one feed event as a short coloured line."""

from __future__ import annotations

from rich.text import Text

from .rows import Row


def describe(ev: Row) -> Text:
    """One feed event as a short coloured line."""
    ts = str(ev.get("ts", ""))
    clock = ts[11:19] if len(ts) >= 19 else ts
    who = ev.get("agent") or "-"
    kind = str(ev.get("event", "?"))
    line = Text()
    line.append(clock + " ", style="dim")
    line.append(f"{who:<12} ", style="bold cyan")
    colour = {"reserve": "yellow", "release": "green", "release-dead": "magenta", "refused": "red",
              "blocked": "red", "join": "green", "leave": "dim", "message": "blue", "edit": "cyan",
              "commit": "bold green", "test": "bold"}.get(kind, "")
    line.append(f"{kind:<9} ", style=colour)
    paths = ev.get("paths")
    if kind == "message":
        detail = f"-> {ev.get('to')}" + (f" ({ev.get('recipients')} recipients)" if ev.get("to") == "*" else "")
        if ev.get("urgent"):
            detail += " URGENT"
    elif kind in ("reserve", "release", "release-dead", "refused") and isinstance(paths, list):
        detail = " ".join(str(p) for p in paths)
        if ev.get("reason"):
            detail += f" - {ev['reason']}"
        if ev.get("holders"):
            detail += f" (held by {', '.join(ev['holders'])})"
        if ev.get("holder"):
            detail += f" (of {ev['holder']})"
    elif kind == "join":
        detail = f"{ev.get('harness') or ''} pid {ev.get('pid')}".strip()
    elif kind == "edit" and isinstance(paths, list):
        detail = f"{ev.get('tool') or ''} {' '.join(str(p) for p in paths)}".strip()
    elif kind == "blocked":
        detail = f"{ev.get('tool')} {ev.get('path')} (held by {ev.get('holder')})"
    elif kind in ("commit", "test"):
        detail = str(ev.get("command") or "")
        if kind == "test":
            detail += "  [passed]" if ev.get("ok") else "  [FAILED]"
    else:
        skip = {"ts", "event", "agent"}
        detail = " ".join(f"{k}={v}" for k, v in ev.items() if k not in skip)
    line.append(detail)
    return line

