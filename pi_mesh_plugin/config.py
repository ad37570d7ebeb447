"""``hooks.toml``: which plugins, tools, guards and limits each agent gets.

Looked up in this order: ``--config``, ``$PI_MESH_CONFIG``,
``<project>/.pi/hooks.toml``, ``<project>/hooks.toml``, else built-in
defaults.  ``[defaults]`` applies to every agent and ``[agents.<name>]``
overrides it key by key; ``[store]`` picks the backend (``$PI_MESH_STORE``
wins over it).  The file is validated against ``schemas/hooks.schema.json``;
an error names the file, the key and what was expected.

The parsed, validated result is cached in ``.pi/mesh/index/config.json``
keyed by the file's identity (path, inode, size, mtime), so a hook run per
tool call pays neither ``tomllib`` nor ``jsonschema``.
"""

from __future__ import annotations

import os
import time

from .clock import parse_duration
from .errors import ConfigError

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULTS: dict = {
    "plugins": ["mesh"],
    "tools": ["*"],
    "guard": ["edit", "write", "bash"],
    "deny": [],
    "reservation_ttl": "30m",
    "max_reservation": "4h",
    "expiry_warning": "5m",
    "auto_claim": False,
    "auto_claim_ttl": "5m",
    "heartbeat_ttl": "60s",
    "on_store_error": "block",
    "sidecar_timeout": "5s",
    "sandbox": "auto",
    "harness": None,
    # governors on sending (pi_mesh_plugin/limits.py): COUNT/DURATION, a duration, or "off"
    "send_limit": "20/1m",
    "receive_limit": "30/1m",
    "repeat_window": "10m",
    "broadcast_limit": "3/10m",
    "ping_pong_limit": "20/5m",
}
ALWAYS_GUARDED = frozenset({"commit"})
_DURATIONS = ("reservation_ttl", "max_reservation", "expiry_warning", "auto_claim_ttl", "heartbeat_ttl",
              "sidecar_timeout")


class AgentConfig:
    """The configuration one agent runs with.  Durations are in seconds."""

    __slots__ = ("plugins", "tools", "guard", "deny", "reservation_ttl", "max_reservation", "expiry_warning",
                 "auto_claim", "auto_claim_ttl", "heartbeat_ttl", "on_store_error",
                 "sidecar_timeout", "sandbox", "harness", "store_url", "project_id", "store_timeouts", "share",
                 "default_agent", "source", "limits", "limits_source")
    plugins: list[str]
    tools: list[str]
    guard: list[str]
    deny: list[str]
    reservation_ttl: float
    max_reservation: float
    expiry_warning: float
    auto_claim: bool
    auto_claim_ttl: float
    heartbeat_ttl: float
    on_store_error: str
    sidecar_timeout: float
    sandbox: str
    harness: str | None
    store_url: str | None
    project_id: str | None
    store_timeouts: dict
    share: str
    default_agent: str | None
    source: str | None
    limits: dict
    limits_source: dict

    def __init__(self, values: dict, source: str | None) -> None:
        for k in self.__slots__:
            object.__setattr__(self, k, values.get(k))
        object.__setattr__(self, "source", source)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("AgentConfig is read-only")

    def exposes(self, tool: str) -> bool:
        return (_matches(tool, self.tools) and not _matches(tool, self.deny))

    def guards(self, tool: str) -> bool:
        """Is ``tool`` checked against the claims before it runs?  ``commit`` (the git hooks, installed on
        purpose) always is; the others when ``guard`` lists them."""
        return tool in ALWAYS_GUARDED or _matches(tool, self.guard)


    def denies(self, tool: str) -> bool:
        return _matches(tool, self.deny)

    @property
    def fail_open(self) -> bool:
        return self.on_store_error == "allow"

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


def _matches(tool: str, patterns: list[str]) -> bool:
    for p in patterns:
        if p == "*" or p == tool:
            return True
        if "*" in p:
            import fnmatch

            if fnmatch.fnmatchcase(tool, p):
                return True
    return False


def find_config_file(root: str, explicit: str | None = None) -> str | None:
    if explicit:
        if not os.path.isfile(explicit):
            raise ConfigError(f"config file {explicit} does not exist")
        return explicit
    env = os.environ.get("PI_MESH_CONFIG")
    if env:
        if not os.path.isfile(env):
            raise ConfigError(f"PI_MESH_CONFIG names {env}, which does not exist")
        return env
    for cand in (os.path.join(root, ".pi", "hooks.toml"), os.path.join(root, "hooks.toml")):
        if os.path.isfile(cand):
            return cand
    return None


def load_config(root: str, agent: str | None = None, explicit: str | None = None) -> AgentConfig:
    """The configuration for ``agent`` in the project at ``root``."""
    path = find_config_file(root, explicit)
    data = _read_cached(root, path) if path else {}
    values = dict(DEFAULTS)
    values.update(data.get("defaults", {}))
    if agent is not None:
        values.update(data.get("agents", {}).get(agent, {}))
    where = path or "built-in defaults"
    for k in _DURATIONS:
        try:
            values[k] = parse_duration(values[k])
        except ValueError as e:
            raise ConfigError(f"{where}: {k}: {e}") from None
    if os.environ.get("PI_MESH_LIMITS") == "off":  # every governor off (load tests, benchmarks)
        from .limits import RULES

        values.update(dict.fromkeys(RULES, "off"))
    values["limits"], values["limits_source"] = _limits(values, where)
    store = data.get("store", {})
    values["store_url"] = os.environ.get("PI_MESH_STORE") or store.get("url") or None
    values["project_id"] = os.environ.get("PI_MESH_PROJECT_ID") or store.get("project_id")
    values["store_timeouts"] = {k: store[k] for k in ("connect_timeout", "statement_timeout", "lock_timeout")
                                if k in store}
    values["default_agent"] = data.get("mesh", {}).get("agent")
    values["share"] = os.environ.get("PI_MESH_SHARE") or data.get("mesh", {}).get("share") or "private"
    if values["share"] not in ("private", "group"):
        raise ConfigError(f"PI_MESH_SHARE: expected private or group, got {values['share'][:50]!r}")
    return AgentConfig(values, path)


def _limits(values: dict, where: str) -> tuple[dict, dict]:
    """The governors' rules, parsed (:mod:`pi_mesh_plugin.limits`), and as written."""
    from .limits import RULES, parse_rate, parse_window

    parsed, source = {}, {}
    for k in RULES:
        source[k] = str(values[k])
        try:
            parsed[k] = parse_window(k, values[k]) if k == "repeat_window" else parse_rate(k, values[k])
        except ValueError as e:
            raise ConfigError(f"{where}: {k}: {e}") from None
    return parsed, source


def _read_cached(root: str, path: str) -> dict:
    try:
        st = os.stat(path)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    key = [os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns]
    cache = os.path.join(root, ".pi", "mesh", "index", "config.json")
    try:
        from .store.files.fsio import read_json  # bounded: no symlink, no fifo, no 1,000-level nesting

        cached = read_json(cache)
        data = cached.get("data")
        if cached.get("key") == key and isinstance(data, dict) and _plausible(data):
            return data
    except (OSError, ValueError):
        pass
    data = parse_config_file(path)
    if time.time_ns() - st.st_mtime_ns > 2_500_000_000 and os.path.isdir(os.path.dirname(cache)):
        from .jsonc import dumps
        from .store.files.fsio import write_atomic

        try:
            write_atomic(cache, dumps({"key": key, "data": data}).encode(), durable=False)
        except OSError:
            pass
    return data


_LISTS = ("plugins", "tools", "guard", "deny")
_SCALARS = tuple(k for k in DEFAULTS if k not in _LISTS)


def _plausible(data: object) -> bool:
    """A cached parse has the types ``parse_config_file`` lets through (a cheap check of every value
    the loader uses, without jsonschema); anything else - a damaged or hand-placed cache - is
    ignored and hooks.toml parsed again."""
    if type(data) is not dict or not all(type(v) is dict for v in data.values()):
        return False
    agents = data.get("agents", {})
    if not all(type(a) is dict for a in agents.values()):
        return False
    for section in [data.get("defaults", {}), *agents.values()]:
        for k, v in section.items():
            if k in _LISTS:
                if type(v) is not list or not all(type(x) is str for x in v):
                    return False
            elif k not in _SCALARS or type(v) not in ((bool,) if k == "auto_claim" else (str, int, float)):
                return False
    return all(type(v) is str for k in ("store", "mesh") for v in data.get(k, {}).values())


def parse_config_file(path: str) -> dict:
    """Parse and validate a hooks.toml; :class:`ConfigError` names file, key and expectation."""
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    from .schema import validator

    errs = sorted(validator("hooks").iter_errors(data), key=lambda e: list(e.absolute_path))
    if errs:
        first = errs[0]
        key = ".".join(str(p) for p in first.absolute_path) or "(top level)"
        if first.validator == "additionalProperties":
            raise ConfigError(f"{path}: {key}: {first.message}") from None
        expected = _expected(first)
        raise ConfigError(f"{path}: {key}: {first.message}{expected}") from None
    sections = [("defaults", data.get("defaults", {}))]
    sections += [(f"agents.{name}", sec) for name, sec in data.get("agents", {}).items()]
    for where, section in sections:
        for k in _DURATIONS:
            if k in section:
                try:
                    parse_duration(section[k])
                except ValueError as err:
                    raise ConfigError(f"{path}: {where}.{k}: {err}") from None
        _limits({**DEFAULTS, **section}, f"{path}: {where}")
    return data


def _expected(err: Any) -> str:  # err: jsonschema.ValidationError
    desc = err.schema.get("description") if isinstance(err.schema, dict) else None
    return f" (expected: {desc})" if desc else ""
