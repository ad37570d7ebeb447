"""``pi-mesh install pi``: writes the extension where Pi loads it, idempotently."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import run_cli

EXT_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pi_mesh_plugin", "adapters",
                       "installers", "pi_extension", "index.ts")


def test_project_install_is_idempotent_and_records_the_interpreter(project) -> None:
    first = run_cli("install", "pi", cwd=os.path.join(project, "src"))  # from a subdirectory: the git top level
    assert first.returncode == 0, first.stderr
    dest = os.path.join(project, ".pi", "extensions", "pi-mesh")
    assert "index.ts created" in first.stdout and dest in first.stdout
    with open(os.path.join(dest, "index.ts"), "rb") as f, open(EXT_SRC, "rb") as g:
        assert f.read() == g.read()
    with open(os.path.join(dest, "pi-mesh.json")) as f:
        launch = json.load(f)
    assert os.path.samefile(launch["python"], sys.executable)
    # the recorded command really starts the sidecar
    env = {**os.environ, "PYTHONPATH": launch.get("pythonpath", "")}
    proc = subprocess.run([launch["python"], "-m", "pi_mesh_plugin", "serve"], cwd=project, env=env,
                          input='{"id": 1, "op": "ping"}\n', capture_output=True, text=True, timeout=60, check=False)
    assert json.loads(proc.stdout)["result"]["pong"] is True, proc.stderr

    again = run_cli("install", "pi", cwd=project)
    assert again.returncode == 0 and "is up to date" in again.stdout, again.stdout
    # a modified copy is put back
    with open(os.path.join(dest, "index.ts"), "a") as f:
        f.write("// local edit\n")
    fixed = run_cli("install", "pi", cwd=project)
    assert "index.ts updated" in fixed.stdout, fixed.stdout
    with open(os.path.join(dest, "index.ts"), "rb") as f, open(EXT_SRC, "rb") as g:
        assert f.read() == g.read()
    assert sorted(os.listdir(dest)) == ["index.ts", "pi-mesh.json"]


def test_global_install_uses_the_pi_agent_dir(project, tmp_path) -> None:
    agent_dir = tmp_path / "pi-agent"
    proc = run_cli("install", "pi", "--global", cwd=project, env={"PI_CODING_AGENT_DIR": str(agent_dir)})
    assert proc.returncode == 0, proc.stderr
    assert (agent_dir / "extensions" / "pi-mesh" / "index.ts").is_file()
    assert not os.path.exists(os.path.join(project, ".pi", "extensions"))
    home = tmp_path / "home"
    env = {"HOME": str(home), "PI_CODING_AGENT_DIR": ""}
    proc = run_cli("--json", "install", "pi", "--global", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["path"] == str(home / ".pi" / "agent" / "extensions" / "pi-mesh")
    assert out["files"] == {"index.ts": "created", "pi-mesh.json": "created"}


def test_unwritable_target_is_a_one_line_error(project, tmp_path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the agent dir should be")
    proc = run_cli("install", "pi", "--global", cwd=project, env={"PI_CODING_AGENT_DIR": str(blocker)})
    assert proc.returncode != 0
    assert proc.stderr.startswith("pi-mesh: error: cannot write") and len(proc.stderr.strip().splitlines()) == 1, \
        proc.stderr


def test_a_project_install_says_plainly_that_pi_in_a_subdirectory_is_not_guarded(project) -> None:
    deep = os.path.join(project, "src", "auth")
    proc = run_cli("install", "pi", cwd=deep)
    assert proc.returncode == 0, proc.stderr
    assert os.path.isfile(os.path.join(project, ".pi", "extensions", "pi-mesh", "index.ts"))
    assert not os.path.exists(os.path.join(deep, ".pi"))
    assert f"You ran this in src/auth/, a subdirectory: the extension was installed for the project at {project}" \
        in proc.stdout
    assert "Pi started in a subdirectory is NOT guarded" in proc.stdout and "pi-mesh install pi --global" in proc.stdout
    at_root = run_cli("install", "pi", cwd=project)
    assert "a subdirectory:" not in at_root.stdout and "NOT guarded" in at_root.stdout  # said at the root too
    glob = run_cli("install", "pi", "--global", cwd=deep, env={"PI_CODING_AGENT_DIR": os.path.join(project, "..", "a")})
    assert glob.returncode == 0 and "NOT guarded" not in glob.stdout, glob.stdout
