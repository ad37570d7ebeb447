"""Governors on sending: no flood, no loop, no repeat.

Before a message is delivered, :func:`check` looks at the messages sent in the
last while (the ``message`` events of the feed, each carrying a digest of its
text) and refuses the send when it would break one of these rules, each set
in ``hooks.toml`` (``[defaults]`` or ``[agents.<name>]``; ``"off"`` turns one
off):

=================  ==========  ====================================================
key                default     refuses
=================  ==========  ====================================================
``send_limit``     ``20/1m``   a sender's N+1st message within the window
``receive_limit``  ``30/1m``   the N+1st message to one recipient (all senders)
``repeat_window``  ``10m``     the same text to the same recipient again so soon
``broadcast_limit`` ``3/10m``  a sender's N+1st broadcast within the window
``ping_pong_limit`` ``20/5m``  the N+1st message between two agents who keep
                               answering each other (both directions present)
=================  ==========  ====================================================

``PI_MESH_LIMITS=off`` in the environment turns every governor off (load
tests, benchmarks, a replay of a log).

A refusal is :class:`~pi_mesh_plugin.errors.SendRefused` (exit 3): one line
saying which rule, since when, and the time it may be retried
(``retry_after``), repeating at most 60 characters of the text.  Nothing is
delivered when a send is refused; nothing accepted is ever dropped - the
governors act only before delivery.  The operator (``human``, ``pi-mesh
top``) and the mesh's own notices are never governed.

The check is advisory across processes: two sends racing from different
processes may both pass the last free slot (each reads the feed, then
delivers).  It reads only the feed's tail (file store) or the newest rows
(PostgreSQL), so it costs the same however long the mesh has run.
"""

from __future__ import annotations

from .clock import format_duration, iso, parse_duration, parse_iso
from .errors import SendRefused, clip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .mesh import Mesh

EXEMPT = frozenset({"human", "mesh"})
RULES = ("send_limit", "receive_limit", "repeat_window", "broadcast_limit", "ping_pong_limit")


def digest(text: str) -> str:
    """A short digest of a message text, recorded in its feed event (for ``repeat_window``)."""
    import hashlib

    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def parse_rate(key: str, value: object) -> tuple[int, float] | None:
    """``"20/1m"`` -> ``(20, 60.0)``; ``"off"`` -> ``None``; ``ValueError`` for anything else."""
    if value in ("off", None, False):
        return None
    if not isinstance(value, str) or "/" not in value:
        raise ValueError(f"{key} must be \"COUNT/DURATION\" such as \"20/1m\", or \"off\"")
    n, _, window = value.partition("/")
    if not n.strip().isdigit() or int(n) < 1:
        raise ValueError(f"{key}: the count in {value!r} must be a whole number of at least 1")
    return int(n), parse_duration(window.strip())


def parse_window(key: str, value: object) -> float | None:
    if value in ("off", None, False, 0, "0"):
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"{key} must be a duration such as \"10m\", or \"off\"")
    return parse_duration(value) or None


def check(mesh: Mesh, sender: str, to: str | None, text: str) -> str:
    """Raise :class:`SendRefused` if ``sender`` may not send ``text`` to ``to`` now (``None``: a broadcast);
    else return the text's digest for the feed event."""
    d = digest(text)
    cfg = mesh.config
    rules = cfg.limits
    if sender in EXEMPT or not any(v is not None for v in rules.values()):
        return d
    horizon = max(r if isinstance(r, float) else r[1] for r in rules.values() if r is not None)
    t = mesh.now()
    stamped = []
    for e in mesh.store.recent_messages(iso(t - horizon)):
        try:
            stamped.append((parse_iso(e["ts"]), e))  # each stamp parsed once, whatever the number of rules
        except (ValueError, TypeError, KeyError):
            continue
    target = to or "*"

    def within(window: float) -> list[tuple[float, dict]]:
        floor = t - window
        return [x for x in stamped if x[0] > floor]

    repeat = rules.get("repeat_window")
    if repeat is not None:
        for ts, e in within(repeat):
            if e.get("agent") == sender and e.get("to") == target and e.get("digest") == d:
                _refuse(mesh, "repeat_window", f"{sender} sent this same text {_shown(text)} to {target} "
                        f"{format_duration(t - ts)} ago (it was delivered then)", ts + repeat, t,
                        "change the text if it is new")
    if to is None:
        _rate(mesh, rules.get("broadcast_limit"), "broadcast_limit", t, within,
              lambda e: e.get("agent") == sender and e.get("to") == "*", f"{sender} sent {{n}} broadcasts")
    _rate(mesh, rules.get("send_limit"), "send_limit", t, within,
          lambda e: e.get("agent") == sender, f"{sender} sent {{n}} messages")
    if to is None:
        return d
    _rate(mesh, rules.get("receive_limit"), "receive_limit", t, within,
          lambda e: e.get("to") == to or (e.get("to") == "*" and e.get("agent") != to), f"{to} was sent {{n}} messages")
    pp = rules.get("ping_pong_limit")
    if pp is not None:
        pair = [(ts, e) for ts, e in within(pp[1])
                if (e.get("agent"), e.get("to")) in ((sender, to), (to, sender))]
        if len(pair) >= pp[0] and {e.get("agent") for _, e in pair} == {sender, to}:
            pair.sort(key=lambda x: x[0])
            _refuse(mesh, "ping_pong_limit", f"{sender} and {to} exchanged {len(pair)} messages in the last "
                    f"{format_duration(pp[1])}, which looks like a loop of answers", pair[len(pair) - pp[0]][0] + pp[1],
                    t, "stop answering each other; tell the person running you, or wait")
    return d


def _rate(mesh: Mesh, rule: tuple[int, float] | None, key: str, t: float, within: object, match: object,
          what: str) -> None:
    if rule is None:
        return
    n, window = rule
    hits = sorted(ts for ts, e in within(window) if match(e))  # type: ignore[operator]
    if len(hits) >= n:
        _refuse(mesh, key, what.format(n=len(hits)) + f" in the last {format_duration(window)}",
                hits[len(hits) - n] + window, t, "nothing was lost: what was accepted is delivered")


def _shown(text: str) -> str:
    return repr(clip(" ".join(text.split()), 60))


def _refuse(mesh: Mesh, key: str, why: str, retry: float, t: float, hint: str) -> None:
    value = mesh.config.limits_source.get(key, "")  # type: ignore[attr-defined]
    mesh.record("send-refused", rule=key, reason=why[:200])
    raise SendRefused(f"not sent: {why} (limit {key} = \"{value}\" in hooks.toml); retry after {iso(retry)} "
                      f"(in {format_duration(max(1.0, retry - t))}); {hint}", key, iso(retry))
