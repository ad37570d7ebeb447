"""Finding the plugins ``hooks.toml`` names, and their hook implementations, cheaply.

A plugin is an object (usually a module) with functions marked ``@hookimpl``;
third-party plugins are found through the entry-point group ``pi_mesh``.  The
built-in plugins (:mod:`pi_mesh_plugin.plugins.mesh`) are registered first, as
``mesh``; then the named plugins in the order ``hooks.toml`` lists them
(``"*"``: every installed one, sorted by name); ``$PI_MESH_LOAD_PLUGINS`` (a
comma list) narrows that further - a plugin it leaves out is never imported.

Scanning entry points reads every installed distribution's metadata, which
costs more than the whole per-call guard.  So it is done at most once per
process, and its answer is kept in ``.pi/mesh/index/entry-points.json`` keyed
by the interpreter, ``sys.path`` and the modification time of each directory
on it (installing, upgrading or removing a distribution changes its
directory), so a fresh hook process reads one small file instead.

:func:`plugins` gives ``(name, plugin)`` pairs; :func:`impls` gives a hook's
implementations in the order pluggy calls them.  The plugin host registers
the same pairs with pluggy (:mod:`pi_mesh_plugin.host`); the per-call decision
calls :func:`impls` directly so that neither pluggy nor ``importlib.metadata``
is imported for a tool call.  Both check, at load, that every ``@hookimpl``
names a hook specification: a misspelled one is a :class:`ConfigError` naming
the plugin, never silently ignored.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

BUILTIN = "mesh"
GROUP = "pi_mesh"
SPECS = {"pi_mesh_pre_tool_call": ("call", "mesh", "config"),
         "pi_mesh_register_tools": ("register", "mesh", "config"),
         "pi_mesh_post_tool_call": ("call", "result", "mesh", "config")}
CACHE = ("index", "entry-points.json")

_scanned: tuple[list, dict[str, str]] | None = None  # (sys.path key, entry-point name -> "module:attr")
_loaded: dict[tuple, list] = {}


class Impl:
    """One hook implementation: the plugin's name, the function, the arguments it takes, its options."""

    __slots__ = ("plugin", "function", "argnames", "opts")

    def __init__(self, plugin: str, function: Callable[..., Any], argnames: tuple[str, ...], opts: dict) -> None:
        self.plugin, self.function, self.argnames, self.opts = plugin, function, argnames, opts

    def __call__(self, **kwargs: Any) -> Any:
        return self.function(*[kwargs[a] for a in self.argnames])


def plugins(names: list[str] | tuple[str, ...], mesh_dir: str | None = None) -> list[tuple[str, object]]:
    """The ``(name, plugin object)`` pairs to register for a ``plugins`` list, in registration order."""
    key = (tuple(names), os.environ.get("PI_MESH_LOAD_PLUGINS"), repr(_path_key()) if names != [BUILTIN] else "")
    hit = _loaded.get(key)
    if hit is not None:
        return hit
    only = os.environ.get("PI_MESH_LOAD_PLUGINS")
    allowed = {p.strip() for p in only.split(",") if p.strip()} if only is not None else None
    out: list[tuple[str, object]] = []
    if BUILTIN in names or "*" in names:
        from .plugins import mesh as builtin

        out.append((BUILTIN, builtin))
    wanted = [n for n in names if n != BUILTIN]
    if wanted:
        found = entry_points(mesh_dir)
        chosen = sorted(set(found) - {BUILTIN}) if "*" in wanted else [n for n in wanted if n != "*"]
        missing = [n for n in chosen if n not in found and (allowed is None or n in allowed)]
        if missing:
            raise ConfigError(f"plugins = {list(names)}: no installed plugin named {', '.join(missing)} "
                              f"(entry-point group {GROUP})")
        for name in chosen:
            if allowed is None or name in allowed:
                out.append((name, _load(name, found[name])))
    for name, plugin in out:
        check_plugin(name, plugin)
    _loaded[key] = out
    return out


def _load(name: str, target: str) -> object:
    import importlib

    module, _, attr = target.partition(":")
    try:
        obj: object = importlib.import_module(module.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            obj = getattr(obj, part)
    except Exception as e:  # noqa: BLE001 - a plugin that fails to import is a configuration error
        raise ConfigError(f"plugins: cannot load the plugin {name} ({target}, entry-point group {GROUP}): "
                          f"{type(e).__name__}: {' '.join(str(e).split())[:200]}") from None
    return obj


def entry_points(mesh_dir: str | None = None) -> dict[str, str]:
    """``{name: "module:attr"}`` of the group ``pi_mesh``: from the cache file when it still matches
    this interpreter's ``sys.path``, else by a scan (once per process while ``sys.path`` and its
    directories stay the same) that refreshes it."""
    global _scanned
    key = _path_key()
    if _scanned is not None and _scanned[0] == key:
        return _scanned[1]
    cache = os.path.join(mesh_dir, *CACHE) if mesh_dir else None
    if cache:
        from .store.files.fsio import read_json  # bounded; a symlink or fifo in its place is not opened

        try:
            data = read_json(cache)
            if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("entry_points"), dict):
                eps: dict[str, str] = data["entry_points"]
                if all(isinstance(k, str) and isinstance(v, str) for k, v in eps.items()):
                    _scanned = (key, eps)
                    return eps
        except (OSError, ValueError, RecursionError):
            pass
    from importlib.metadata import entry_points as scan

    found: dict[str, str] = {}
    for ep in scan(group=GROUP):
        found.setdefault(ep.name, ep.value)
    _scanned = (key, found)
    if cache and os.path.isdir(os.path.dirname(cache)):
        import json

        from .store.files.fsio import write_atomic

        try:
            write_atomic(cache, json.dumps({"key": key, "entry_points": found}).encode(), durable=False)
        except OSError:
            pass
    return found


def _path_key() -> list:
    key: list = [sys.executable]
    for d in sys.path:
        try:
            key.append([d, os.stat(d or ".").st_mtime_ns])
        except OSError:
            key.append([d, None])
    return key


def marked(plugin: object) -> list[tuple[str, Callable[..., Any], dict]]:
    """``(hook name, function, options)`` of each ``@hookimpl`` of ``plugin`` (what pluggy registers)."""
    out = []
    for attr in dir(plugin):
        try:
            fn = getattr(plugin, attr)
        except Exception:  # noqa: BLE001 - pluggy skips attributes that cannot be read, too
            continue
        opts = getattr(fn, f"{GROUP}_impl", None) if callable(fn) else None
        if isinstance(opts, dict):
            out.append((opts.get("specname") or attr, fn, opts))
    return out


def argnames(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The positional arguments without defaults that ``fn`` takes (``self`` of a method excluded), as pluggy
    reads them."""
    func = getattr(fn, "__func__", fn)
    code = getattr(func, "__code__", None)
    if code is None:  # a callable object
        code = getattr(getattr(fn, "__call__", None), "__code__", None)  # noqa: B004
        if code is None:
            return ()
        func, bound = fn.__call__, True  # type: ignore[operator]
    else:
        bound = hasattr(fn, "__self__")
    names = code.co_varnames[:code.co_argcount]
    defaults = getattr(getattr(func, "__func__", func), "__defaults__", None) or ()
    if defaults:
        names = names[:-len(defaults)]
    return tuple(names[1:] if bound and names else names)


def check_plugin(name: str, plugin: object) -> None:
    """Every ``@hookimpl`` of ``plugin`` names a hook specification and takes only its arguments."""
    for hook, fn, opts in marked(plugin):
        if hook not in SPECS:
            if opts.get("optionalhook"):
                continue
            raise ConfigError(f"plugin {name}: @hookimpl {hook!r} matches no hook specification "
                              f"({', '.join(sorted(SPECS))}); fix its name")
        extra = [a for a in argnames(fn) if a not in SPECS[hook]]
        if extra:
            raise ConfigError(f"plugin {name}: @hookimpl {hook} takes {', '.join(extra)}, which the hook does not "
                              f"pass (it passes {', '.join(SPECS[hook])})")


def impls(pairs: list[tuple[str, object]], hook: str) -> list[Impl] | None:
    """``hook``'s implementations in the order pluggy calls them (last registered first, ``tryfirst`` /
    ``trylast`` honoured); ``None`` when one is a hook wrapper (then only pluggy itself can call them)."""
    chain: list[Impl] = []  # pluggy's list order; it calls them reversed
    for plugin_name, plugin in pairs:
        for name, fn, opts in marked(plugin):
            if name != hook:
                continue
            if opts.get("wrapper") or opts.get("hookwrapper"):
                return None
            impl = Impl(plugin_name, fn, argnames(fn), opts)
            if opts.get("trylast"):
                chain.insert(0, impl)
            elif opts.get("tryfirst"):
                chain.append(impl)
            else:
                i = len(chain) - 1
                while i >= 0 and chain[i].opts.get("tryfirst"):
                    i -= 1
                chain.insert(i + 1, impl)
    chain.reverse()
    return chain
