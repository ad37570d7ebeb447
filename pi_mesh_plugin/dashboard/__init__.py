"""``pi-mesh top``: a live terminal dashboard (Textual) for the person running the agents.

It shows who is here (live or stale, harness, model, last activity, how many
claims, unread mail, status line), every stored claim (holder, path, reason,
age, expiry, and whether it still counts), and the feed scrolling live.  The
compose line speaks as the operator, a registered agent named ``human``
(owned by the dashboard process, so it goes stale if the dashboard is
killed, and leaves when it quits)::

    @bob please rebase on main        message one agent
    @all stand down, tests are red    message every live agent
    /release-dead bob                 drop the claims of bob, which must be stale
    /help

Mail to the operator appears in the feed pane as it arrives.

Updates come from :class:`~pi_mesh_plugin.watcher.Watcher` (file-system
events, or the store's notifications), not from a busy loop; a slow clock
(``tick`` seconds, default 5) only re-ages rows and re-judges liveness, which
changes with time rather than with files.

The pure parts - :func:`snapshot`, :func:`parse_compose`,
:func:`release_dead`, :func:`describe` - do not need a terminal.
"""

from __future__ import annotations

from .app import AGENT_COLUMNS, CLAIM_COLUMNS, MeshChanged, MeshTop, operator_mesh
from .commands import HELP, LiveAgent, parse_compose, release_dead
from .feed import describe
from .rows import OPERATOR, Row, snapshot

__all__ = ["AGENT_COLUMNS", "CLAIM_COLUMNS", "HELP", "OPERATOR", "LiveAgent", "MeshChanged", "MeshTop", "Row",
           "describe", "operator_mesh", "parse_compose", "release_dead", "snapshot"]
