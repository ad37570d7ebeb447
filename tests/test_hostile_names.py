"""Names that could address a file outside .pi/mesh/ are refused everywhere, with one-line errors."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.torture.hostile import names


def test_bad_names_refused_and_nothing_written_outside(tmp_path) -> None:
    f = names(str(tmp_path))
    print(f["line"])
    assert f["accepted"] == [] and f["crashed"] == []
    assert f["written_outside_mesh"] == [] and f["links_out_of_mesh"] == []
    assert f["attempts"] >= 400


@pytest.mark.parametrize("bad", ["../x", "a/b", ".", "x" * 65, "аdmin", "a\u2215b"])
def test_cli_refuses_bad_recipient_in_one_line(project, bad) -> None:
    assert run_cli("--agent", "alice", "join", cwd=project).returncode == 0
    r = run_cli("--agent", "alice", "send", bad, "hi", cwd=project)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "invalid recipient" in r.stderr
