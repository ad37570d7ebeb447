"""The meshes that govern a call's writes: each write is checked where it lands.

:func:`groups` splits the calls :func:`pi_mesh_plugin.host.decide` checks into
one group per mesh: the caller's mesh with every call (as before), then, for
each write landing in another project (found from the path by
:func:`pi_mesh_plugin.projects.governing_roots`: a submodule's superproject, a
project written into from outside it), that project's mesh with one call per
such write, its path absolute.  A project with no mesh (no ``.pi`` directory,
no ``hooks.toml``, no ``$PI_MESH_STORE``) has no claims and is skipped.  The
meshes opened are cached on the caller's mesh (a sidecar asks many times).
"""

from __future__ import annotations

import os

from . import paths as P
from .projects import governing_roots, shared_root
from .records import ToolCall

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .mesh import Mesh


def groups(mesh: Mesh, calls: list[ToolCall]) -> list[tuple[Mesh, list[ToolCall]]]:
    out: list[tuple[Mesh, list[ToolCall]]] = [(mesh, calls)]
    others: dict[str, list[ToolCall]] = {}
    mine = {mesh.root_real, getattr(mesh, "store_root_real", mesh.root_real)}
    for c in calls:
        if not c.paths:
            continue  # checked through its derived calls, which have paths
        for path, kind in c.writes:
            full = _full(path, c.cwd or mesh.cwd, mesh.root_real)
            if full is None:
                continue
            for top in governing_roots(full):
                if top in mine or P.normalise_root(shared_root(top)) in mine:
                    continue
                others.setdefault(top, []).append(ToolCall(
                    tool=c.tool, input=c.input, paths=(full,), writes=[(full, kind)], agent=c.agent, cwd=top,
                    harness=c.harness, raw_tool=c.raw_tool, via=c.via))
    for top, group in others.items():
        other = _mesh_for(mesh, top)
        if other is not None:
            out.append((other, group))
    return out


def _full(path: str, cwd: str, root: str) -> str | None:
    if not isinstance(path, str) or not path or "\x00" in path:
        return None  # the caller's own mesh reports it
    return P._resolve(os.path.join(cwd, P.as_given(path)), root)


def _mesh_for(mesh: Mesh, top: str) -> Mesh | None:
    cache = mesh.__dict__.setdefault("_governing", {})
    if top not in cache:
        has_mesh = (os.path.isdir(os.path.join(shared_root(top), ".pi")) or os.path.isdir(os.path.join(top, ".pi"))
                    or os.path.isfile(os.path.join(top, "hooks.toml")) or bool(os.environ.get("PI_MESH_STORE")))
        if not has_mesh:
            cache[top] = None
        else:
            from .mesh import Mesh

            cache[top] = Mesh(top, mesh.agent, cwd=top)
    return cache[top]  # type: ignore[no-any-return]
