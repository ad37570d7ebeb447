"""Path aliasing against the guard: every spelling of a claimed path is blocked (check and decide)."""

from __future__ import annotations

import os

from pi_mesh_plugin import paths as P
from tests.torture.hostile import aliases


def test_alias_corpus_has_no_bypass(tmp_path) -> None:
    f = aliases(str(tmp_path))
    print(f["line"])
    assert f["bypasses"] == 0, f["bypass_examples"]
    assert f["false_blocks"] == [], f["false_blocks"]
    assert f["alias_forms_tried"] >= 250
    assert f["inside_to_outside_symlink_claim_refused"]
    assert f["case_insensitive"]["bypasses"] == 0 and f["case_insensitive"]["forms"] > 0


def test_case_detection_when_both_spellings_exist(tmp_path) -> None:
    """On a case-sensitive filesystem `Dd` and `dD` are two directories: the probe must still say so."""
    (tmp_path / "Dd").mkdir()
    (tmp_path / "dD").mkdir()
    assert P.detect_case_insensitive(str(tmp_path / "Dd")) is False
    assert os.listdir(tmp_path / "Dd") == []  # the probe file is gone


def test_folding_covers_every_case_spelling() -> None:
    for spelling in ("/Proj/SRC/Auth/LOGIN.PY", "/proj/src/auth/login.py", "/PROJ/Src/aUTH/Login.py"):
        c = P.relative_to_root(spelling, "/Proj", casefold=True)
        assert c is not None and P.covers(P.fold("src/Auth", True), P.DIR, c)
        assert P.relative_to_root(spelling, "/Proj", casefold=False) in (None, "SRC/Auth/LOGIN.PY")
