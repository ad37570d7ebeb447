"""hooks.toml: lookup order, [defaults] / [agents.x] merge, one-line errors, and what deny / guard / tools do."""

from __future__ import annotations

import os

import pytest

from pi_mesh_plugin.config import load_config
from pi_mesh_plugin.errors import ConfigError, ToolDenied, UsageError
from pi_mesh_plugin.host import decide
from pi_mesh_plugin.host import PluginHost
from pi_mesh_plugin.mesh import Mesh
from pi_mesh_plugin.records import ToolCall


def write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def ttl_config(ttl: str) -> str:
    return f'[defaults]\nreservation_ttl = "{ttl}"\n'


# -- lookup order -----------------------------------------------------------------------

def test_lookup_order_explicit_env_dotpi_top_builtin(project, tmp_path, monkeypatch):
    explicit = write(str(tmp_path / "explicit.toml"), ttl_config("1m"))
    env = write(str(tmp_path / "env.toml"), ttl_config("2m"))
    dotpi = write(os.path.join(project, ".pi", "hooks.toml"), ttl_config("3m"))
    top = write(os.path.join(project, "hooks.toml"), ttl_config("4m"))
    monkeypatch.setenv("PI_MESH_CONFIG", env)
    assert (load_config(project, None, explicit).reservation_ttl, load_config(project, None, explicit).source) \
        == (60, explicit)
    assert load_config(project).reservation_ttl == 120
    monkeypatch.delenv("PI_MESH_CONFIG")
    assert (load_config(project).reservation_ttl, load_config(project).source) == (180, dotpi)
    os.remove(dotpi)
    assert (load_config(project).reservation_ttl, load_config(project).source) == (240, top)
    os.remove(top)
    cfg = load_config(project)
    assert cfg.source is None and cfg.reservation_ttl == 1800 and cfg.guard == ["edit", "write", "bash"]
    assert cfg.plugins == ["mesh"] and cfg.deny == [] and cfg.on_store_error == "block" and not cfg.fail_open


def test_missing_explicit_or_env_file_is_an_error_not_a_fallback(project, tmp_path, monkeypatch):
    write(os.path.join(project, "hooks.toml"), ttl_config("4m"))
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as info:
        load_config(project, None, missing)
    assert missing in str(info.value)
    monkeypatch.setenv("PI_MESH_CONFIG", missing)
    with pytest.raises(ConfigError) as info:
        load_config(project)
    assert "PI_MESH_CONFIG" in str(info.value) and missing in str(info.value)


def test_defaults_then_agent_table_key_by_key(project):
    write(os.path.join(project, "hooks.toml"), """
[defaults]
guard = ["edit", "write", "bash"]
reservation_ttl = "45m"
deny = ["webfetch"]

[agents.reviewer]
deny = ["bash", "edit", "write"]

[agents.builder]
reservation_ttl = "2h"
""")
    rev, bld, other = (load_config(project, n) for n in ("reviewer", "builder", "someone"))
    assert rev.deny == ["bash", "edit", "write"] and rev.reservation_ttl == 45 * 60 and "bash" in rev.guard
    assert bld.deny == ["webfetch"] and bld.reservation_ttl == 7200 and bld.guard == ["edit", "write", "bash"]
    assert other.deny == ["webfetch"] and other.reservation_ttl == 45 * 60
    # the Mesh picks the table of its agent, and uses its TTL for claims
    m = Mesh(project, "builder", cwd=project)
    m.join()
    [r] = m.reserve(["src/"], "long job")
    from pi_mesh_plugin.clock import parse_iso

    assert abs(parse_iso(r.expires) - parse_iso(r.created) - 7200) < 1


def test_mesh_agent_default_gets_its_own_table(project):
    write(os.path.join(project, "hooks.toml"), '[mesh]\nagent = "reviewer"\n[agents.reviewer]\ndeny = ["bash"]\n')
    m = Mesh(project, cwd=project)
    assert m.agent == "reviewer"
    assert m.config.deny == ["bash"]


def test_parsed_config_is_cached_and_the_cache_follows_edits(project):
    path = write(os.path.join(project, "hooks.toml"), ttl_config("7m"))
    os.makedirs(os.path.join(project, ".pi", "mesh", "index"))
    os.utime(path, (1_000_000_000, 1_000_000_000))  # old enough to be cached
    assert load_config(project).reservation_ttl == 420
    cache = os.path.join(project, ".pi", "mesh", "index", "config.json")
    assert os.path.exists(cache)
    write(path, ttl_config("8m"))
    assert load_config(project).reservation_ttl == 480
    os.utime(path, (1_000_000_100, 1_000_000_100))
    assert load_config(project).reservation_ttl == 480
    with open(cache, "w") as f:
        f.write("{corrupt")
    assert load_config(project).reservation_ttl == 480


# -- invalid configs: one line naming file, key and expectation ---------------------------------

BAD = [
    ("[defaults\nguard = 1", "invalid TOML", "line 1"),
    ("[bogus]\nx = 1", "(top level)", "'bogus' was unexpected"),
    ("[defaults]\nguard = 'edit'", "defaults.guard", "not of type 'array'"),
    ("[defaults]\non_store_error = 'maybe'", "defaults.on_store_error", "'block', 'allow'"),
    ("[agents.builder]\nreservation_ttl = 'soon'", "agents.builder.reservation_ttl", "e.g. 90s, 30m, 2h"),
    ("[defaults]\nheartbeat_ttl = -5", "defaults.heartbeat_ttl", "must be positive"),
    ("[agents.'bad name']\ndeny = []", "agents", "does not match"),
    ("[agents.x]\ndenny = ['bash']", "agents.x", "'denny' was unexpected"),
    ("[defaults]\ndeny = [1]", "defaults.deny.0", "not of type 'string'"),
    ("[defaults]\ntools = ['a b']", "defaults.tools.0", "does not match"),
    ("[store]\nurl = 5", "store.url", "not of type 'string'"),
    ("[mesh]\nagent = '../x'", "mesh.agent", "does not match"),
    ("agents = 5", "agents", "not of type 'object'"),
]


@pytest.mark.parametrize("text,key,expected", BAD, ids=[b[1] + ":" + b[2][:12] for b in BAD])
def test_invalid_config_is_one_line_naming_file_key_and_expectation(project, text, key, expected):
    path = write(os.path.join(project, ".pi", "hooks.toml"), text)
    with pytest.raises(ConfigError) as info:
        load_config(project, "x")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(path + ": ")
    assert f": {key}: " in msg or (key == "invalid TOML" and "invalid TOML" in msg), msg
    assert expected in msg, msg
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    with pytest.raises(ConfigError):
        Mesh(project, "x", cwd=project)


def test_unknown_store_url_is_a_config_error(project):
    write(os.path.join(project, "hooks.toml"), '[store]\nurl = "mysql://nope"\n')
    with pytest.raises(ConfigError) as info:
        Mesh(project, "x", cwd=project)
    assert "mysql://nope" in str(info.value)


def test_unknown_plugin_is_a_config_error_naming_it(project):
    write(os.path.join(project, "hooks.toml"), '[defaults]\nplugins = ["mesh", "no-such-plugin"]\n')
    m = Mesh(project, "x", cwd=project)
    with pytest.raises(ConfigError) as info:
        PluginHost(m)
    assert "no-such-plugin" in str(info.value) and "pi_mesh" in str(info.value)


# -- deny / guard / tools, through host.decide and the plugin host ----------------------------

CONFIG = """
[defaults]
guard = ["edit", "write"]

[agents.reviewer]
deny = ["bash", "edit", "write", "reserve"]

[agents.builder]
guard = ["edit", "write", "notebook*"]

[agents.narrow]
tools = ["send_message", "read_inbox"]
guard = []

[agents.careless]
on_store_error = "allow"
"""


@pytest.fixture
def configured(project):
    write(os.path.join(project, "hooks.toml"), CONFIG)
    holder = Mesh(project, "holder", cwd=project)
    holder.join()
    holder.reserve(["src/auth/"], "auth refactor")
    made = {}

    def get(name):
        if name not in made:
            m = Mesh(project, name, cwd=project)
            m.join()
            made[name] = m
        return made[name]

    return get


def call(tool: str, *paths: str, cwd: str | None = None) -> ToolCall:
    return ToolCall(tool=tool, paths=list(paths), input={}, cwd=cwd)


def test_denied_tools_are_refused_outright_even_on_free_paths(configured, project):
    rev = configured("reviewer")
    for tool in ("bash", "edit", "write"):
        b = decide(rev, call(tool, "README.md", cwd=project))
        assert b is not None and "denied" in b.message and "reviewer" in b.message and "hooks.toml" in b.message
        assert PluginHost(rev).pre_tool_call(call(tool, "README.md", cwd=project)) is not None
    assert decide(rev, call("read", "src/auth/login.py", cwd=project)) is None
    host = PluginHost(rev)
    names = {t.name for t in host.tools()}
    assert "reserve" not in names and {"send_message", "read_inbox", "release", "list_agents"} <= names
    with pytest.raises(ToolDenied) as info:
        host.call_tool("reserve", {"paths": ["x"], "reason": "r"})
    assert info.value.exit_code == 3


def test_guarded_tools_are_checked_reads_never(configured, project):
    other = configured("other")
    for tool in ("edit", "write"):
        b = decide(other, call(tool, "src/auth/login.py", cwd=project))
        assert b is not None and b.holder == "holder" and b.reason == "auth refactor"
        assert decide(other, call(tool, "src/other.py", cwd=project)) is None
    for tool in ("read", "grep", "notebook_edit", "bash"):
        assert decide(other, call(tool, "src/auth/login.py", cwd=project)) is None, tool
    # relative to the call's cwd
    b = decide(other, call("edit", "login.py", cwd=os.path.join(project, "src", "auth")))
    assert b is not None and b.canonical == "src/auth/login.py"
    # several paths: the first blocked one is reported
    b = decide(other, call("write", "src/free.py", "src/auth/new.py", cwd=project))
    assert b is not None and b.canonical == "src/auth/new.py"


def test_guard_patterns_and_empty_guard(configured, project):
    bld = configured("builder")
    assert decide(bld, call("notebook_edit", "src/auth/nb.ipynb", cwd=project)) is not None
    narrow = configured("narrow")
    assert decide(narrow, call("edit", "src/auth/login.py", cwd=project)) is None  # guard = []


def test_tools_list_limits_what_is_exposed(configured):
    host = PluginHost(configured("narrow"))
    assert sorted(t.name for t in host.tools()) == ["read_inbox", "send_message"]
    with pytest.raises(UsageError) as info:
        host.call_tool("reserve", {"paths": ["x"], "reason": "r"})
    assert "no tool named 'reserve'" in str(info.value)


def _break_store(project: str) -> None:
    res = os.path.join(project, ".pi", "mesh", "reservations")
    os.rename(res, res + ".away")
    os.symlink("reservations", res)  # a symlink loop: every stat of it fails with ELOOP


def test_unreadable_store_fails_closed_by_default(configured, project):
    other = configured("other")
    _break_store(project)
    b = decide(other, call("edit", "src/free.py", cwd=project))
    assert b is not None and "could not read the reservations" in b.message and "pi-mesh doctor" in b.message
    assert decide(other, call("read", "src/free.py", cwd=project)) is None  # reads never blocked


def test_on_store_error_allow_fails_open(configured, project):
    careless = configured("careless")
    _break_store(project)
    assert careless.config.fail_open
    assert decide(careless, call("edit", "src/free.py", cwd=project)) is None


def test_bad_path_in_a_call_blocks_with_a_one_line_reason(configured, project):
    b = decide(configured("other"), call("edit", "", cwd=project))
    assert b is not None and b.message.startswith("BLOCKED: edit: ") and "\n" not in b.message
