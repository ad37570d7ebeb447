"""Canonical paths and the overlap algebra of reservations.

Three layers: the pure algebra in :mod:`pi_mesh_plugin.paths` (properties
against a reference written with tuples of path parts); canonicalisation of
every spelling of a path on a real tree with real symlinks; and the guard
itself - ``Mesh.check`` compared with a simple model of who holds what.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pi_mesh_plugin import paths as P
from pi_mesh_plugin.errors import OutsideProject, ReservationConflict, UsageError
from pi_mesh_plugin.mesh import Mesh
from tests.torture.common import env

# -- reference model -----------------------------------------------------------


def parts(p: str) -> tuple[str, ...]:
    return () if p == "." else tuple(p.split("/"))


def ref_covers(claim: str, kind: str, path: str) -> bool:
    c, q = parts(claim), parts(path)
    return q == c or (kind == "dir" and q[:len(c)] == c)


def ref_overlap(a: str, ak: str, b: str, bk: str) -> bool:
    return ref_covers(a, ak, b) or ref_covers(b, bk, a)


segment = st.sampled_from(["a", "b", "ab", "a.b", "b-c", "caf\u00e9", "A"])
rel_path = st.one_of(st.just("."), st.lists(segment, min_size=1, max_size=4).map("/".join))
kind = st.sampled_from(["dir", "file"])

# -- the pure algebra -------------------------------------------------------------


@given(rel_path, kind, rel_path, kind)
@settings(max_examples=200)
def test_overlap_is_symmetric_and_matches_reference(a, ak, b, bk):
    assert P.overlap(a, ak, b, bk) == P.overlap(b, bk, a, ak)
    assert P.overlap(a, ak, b, bk) == ref_overlap(a, ak, b, bk)


@given(rel_path, kind, rel_path)
@settings(max_examples=200)
def test_covers_and_within_agree_with_prefixes(claim, k, path):
    assert P.covers(claim, k, path) == ref_covers(claim, k, path)
    # is_within(path, claim) iff claim is one of the prefixes of path
    assert P.is_within(path, claim) == (claim in P.prefixes(path))
    # a claim covers path only if it is one of its prefixes; a file claim only if it is the path itself
    if P.covers(claim, k, path):
        assert claim in P.prefixes(path)
        assert k == "dir" or claim == path


@given(rel_path)
def test_prefixes_are_root_then_each_ancestor_then_the_path(path):
    pre = P.prefixes(path)
    assert pre[0] == "." and pre[-1] == path
    assert len(pre) == len(set(pre)) == len(parts(path)) + 1
    for i, p in enumerate(pre[1:], start=1):
        assert parts(p) == parts(path)[:i]


def test_sibling_with_common_prefix_is_not_within():
    assert not P.is_within("src/authority/x", "src/auth")
    assert not P.overlap("src/auth", "dir", "src/authority", "dir")
    assert P.overlap("src/auth", "dir", "src/auth/x", "file")
    assert not P.overlap("src/auth/x", "file", "src/auth/x/y", "file")  # a file has nothing beneath
    assert P.overlap(".", "dir", "anything/at/all", "file")


def test_relative_to_root_never_matches_a_sibling_directory():
    assert P.relative_to_root("/r/project2/x", "/r/project") is None
    assert P.relative_to_root("/r/project", "/r/project") == "."
    assert P.relative_to_root("/r/project/x/y", "/r/project") == "x/y"
    assert P.relative_to_root("/", "/") == "."
    assert P.relative_to_root("/etc", "/") == "etc"


def test_casefold_only_when_asked():
    assert P.relative_to_root("/R/Proj/Src/A.py", "/r/proj", casefold=True) == "src/a.py"
    assert P.relative_to_root("/R/Proj/Src/A.py", "/r/proj", casefold=False) is None


def test_case_sensitivity_is_detected_not_assumed(tmp_path):
    cased, uncased = tmp_path / "Cased", tmp_path / "123"
    cased.mkdir()
    uncased.mkdir()
    # this suite runs on Linux filesystems, which are case sensitive
    assert P.detect_case_insensitive(str(cased)) is False
    assert P.detect_case_insensitive(str(uncased)) is False
    assert os.listdir(uncased) == []  # the probe file is cleaned up
    # a directory whose swapped-case twin exists as a different directory is still case sensitive
    (tmp_path / "cASED").mkdir()
    assert P.detect_case_insensitive(str(cased)) is False


@pytest.mark.parametrize("bad", ["", "@", "a\x00b"])
def test_canonicalise_rejects_empty_and_nul(tmp_path, bad):
    with pytest.raises(ValueError):
        P.canonicalise(bad, str(tmp_path), P.normalise_root(str(tmp_path)))


# -- a real tree with aliases -------------------------------------------------------

class Tree:
    """A project with symlinks in, out and across, agents h (holder) and me (checker), HOME inside it."""

    PLAIN = ["src", "src/auth", "src/auth/login.py", "src/auth/new.py", "src/auth/deep/n.py", "src/other.py",
             "src/caf\u00e9", "src/caf\u00e9/x.py", "docs/readme.md", "README", "."]

    def __init__(self) -> None:
        self.base = tempfile.mkdtemp(prefix="pi-mesh-paths-")
        self.root = root = os.path.join(self.base, "project")
        self.outside = os.path.join(self.base, "elsewhere")
        os.makedirs(os.path.join(root, "src", "auth"))
        os.makedirs(os.path.join(root, "src", "caf\u00e9"))
        os.makedirs(os.path.join(root, "home"))
        os.makedirs(self.outside)
        for f in ("src/auth/login.py", "src/caf\u00e9/x.py", "README"):
            with open(os.path.join(root, f), "w") as fh:
                fh.write("x\n")
        os.symlink("src/auth", os.path.join(root, "alink"))            # a symlinked dir into the tree
        os.symlink("src/auth/login.py", os.path.join(root, "flink"))   # a symlinked file into the tree
        os.symlink("auth/new.py", os.path.join(root, "src", "dangling"))  # to a file that does not exist yet
        os.symlink(self.outside, os.path.join(root, "outside"))        # from inside to outside
        os.symlink(root, os.path.join(self.base, "project-link"))      # the project reached through a symlink
        subprocess.run(["git", "init", "-q", root], check=True)
        self.home = os.path.join(root, "home")
        with env(HOME=self.home):
            self.h = Mesh(root, "h", cwd=root)
            self.h.join()
            self.me = Mesh(root, "me", cwd=root)
            self.me.join()

    def aliases(self, p: str) -> list[tuple[str, str]]:
        """(alias, cwd) pairs naming the same file as ``p`` (relative to the root)."""
        root, src = self.root, os.path.join(self.root, "src")
        rel = "" if p == "." else p
        out = [
            (os.path.join(root, rel).rstrip("/") if rel else root, root),
            ("./" + rel, root),
            ("/".join(x for x in rel.split("/")) .replace("/", "//") or ".//", root),
            ("src/../" + rel, root),
            ("nowhere/../" + rel, root),
            ("@" + (rel or "."), root),
            ("~/../" + rel, root),
            (os.path.relpath(os.path.join(root, rel), src), src),
            ("../" + rel, src),
            (os.path.join(self.base, "project-link", rel), self.base),
            (unicodedata.normalize("NFD", rel or "."), root),
            (unicodedata.normalize("NFD", os.path.join(root, rel)), "/"),
            ("@./" + unicodedata.normalize("NFD", rel), root),
        ]
        if p == "src/auth" or p.startswith("src/auth/"):
            out.append(("alink" + p[len("src/auth"):], root))
            out.append(("../alink" + p[len("src/auth"):], src))
        if p == "src/auth/login.py":
            out += [("flink", root), ("./flink", root), (os.path.join(root, "flink"), "/")]
        if p == "src/auth/new.py":
            out.append(("dangling", src))
        return out

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def tree():
    t = Tree()
    yield t
    t.close()


claim_sets = st.lists(st.tuples(st.sampled_from(Tree.PLAIN), kind), min_size=0, max_size=3, unique_by=lambda c: c[0])


def _reserve_all(t: Tree, claims) -> list[tuple[str, str]]:
    made = []
    for path, k in claims:
        given_ = path + "/" if k == "dir" and path != "." else path
        # an existing directory is always a dir claim; "." too
        if path == "." or os.path.isdir(os.path.join(t.root, path)):
            k = "dir"
        try:
            for r in t.h.reserve([given_], "testing aliases", ttl="5m"):
                assert (r.path, r.kind) == (path, k)
                made.append((r.path, r.kind))
        except ReservationConflict:
            raise AssertionError("one holder never conflicts with itself") from None
    return made


@given(claims=claim_sets, target=st.sampled_from(Tree.PLAIN))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_alias_is_blocked_exactly_when_the_plain_path_is(tree, claims, target):
    t = tree
    with env(HOME=t.home):
        made = _reserve_all(t, claims)
        try:
            plain = t.me.check(target, cwd=t.root)
            beneath = any(c != target and P.is_within(c, target) for c, _ in made)
            # "." is the whole project: checking it is a directory check (a claim anywhere beneath blocks it)
            expect = any(ref_covers(c, k, target) for c, k in made) or (target == "." and beneath)
            assert (plain is not None) == expect
            if plain is not None:
                assert plain.holder == "h" and plain.reason == "testing aliases" and "h" in plain.message
            for alias, cwd in t.aliases(target):
                assert t.me.canonical(alias, cwd) == target, (alias, cwd)
                got = t.me.check(alias, cwd=cwd)
                assert (got is not None) == expect, (alias, cwd, made)
                if got is not None:
                    assert got.canonical == target and got.path == alias
            # a trailing slash checks the directory: blocked when the path is, or when a claim lies beneath it
            slash = target + "/" if target != "." else "./"
            assert (t.me.check(slash, cwd=t.root) is not None) == (expect or beneath)
            # the holder is never blocked by its own claims
            assert t.h.check(target, cwd=t.root) is None
        finally:
            t.h.release()
    assert t.me.check(target, cwd=t.root) is None


@given(target=st.sampled_from([p for p in Tree.PLAIN if p != "."]), pick=st.integers(min_value=0, max_value=20))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_claim_through_any_alias_stores_the_canonical_path(tree, target, pick):
    t = tree
    with env(HOME=t.home):
        aliases = t.aliases(target)
        alias, cwd = aliases[pick % len(aliases)]
        try:
            made = t.h.reserve([alias], "via alias", cwd=cwd)
            assert [r.path for r in made] == [target]
            assert t.me.check(target, cwd=t.root) is not None
            # release through yet another spelling
            other, ocwd = aliases[(pick + 1) % len(aliases)]
            assert [r.path for r in t.h.release([other], cwd=ocwd)] == [target]
            assert t.h.reservations() == []
        finally:
            t.h.release()


def test_symlink_to_outside_is_never_blocked_and_cannot_be_claimed(tree):
    t = tree
    t.h.reserve(["."], "everything")
    try:
        for p in ["outside", "outside/x.py", "outside/new/deep.py", os.path.join(t.outside, "x.py"), "/etc/passwd",
                  "src/../../elsewhere/x", "~/../../elsewhere/y", "../../.."]:
            assert t.me.canonical(p, t.root) is None, p
            assert t.me.check(p, cwd=t.root) is None, p
        with pytest.raises(OutsideProject) as info:
            t.me.reserve(["outside/x.py"], "escape")
        assert info.value.exit_code == 2 and "outside the project" in str(info.value)
        with pytest.raises(OutsideProject):
            t.me.reserve(["/tmp"], "escape")
        assert [r.holder for r in t.me.reservations()] == ["h"]
    finally:
        t.h.release()


@given(path=st.lists(segment, min_size=1, max_size=5).map("/".join), slash=st.booleans())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_reserving_the_root_blocks_everything_inside(tree, path, slash):
    t = tree
    t.h.reserve(["."], "everything")
    try:
        assert t.me.check(path + ("/" if slash else ""), cwd=t.root) is not None
        assert t.me.check(".", cwd=t.root) is not None
        with pytest.raises(ReservationConflict):
            t.me.reserve([path], "mine")
    finally:
        t.h.release()


def test_empty_path_is_a_usage_error(tree):
    with pytest.raises(UsageError):
        tree.me.check("")
    with pytest.raises(UsageError):
        tree.me.reserve([""], "x")


# -- Mesh.check against a model of live claims ------------------------------------------

@contextlib.contextmanager
def fresh_project():
    base = tempfile.mkdtemp(prefix="pi-mesh-model-")
    try:
        os.makedirs(os.path.join(base, "p"))
        yield os.path.join(base, "p")
    finally:
        shutil.rmtree(base, ignore_errors=True)


tree_path = st.one_of(st.just("."), st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map("/".join))
attempt = st.tuples(st.sampled_from(["p1", "p2", "dead"]), tree_path, kind, st.booleans())


@given(attempts=st.lists(attempt, max_size=10), probes=st.lists(st.tuples(tree_path, kind), min_size=1, max_size=8))
@settings(max_examples=40, deadline=None)
def test_blocked_iff_within_another_agents_live_claim(attempts, probes):
    """Random claims by two live agents, one agent that dies and claims that expire; every probe
    is compared with the model: blocked iff it lies within (or, for a directory, contains) a live
    claim of another agent."""
    with fresh_project() as root:
        agents = {}
        for name in ("me", "p1", "p2"):
            agents[name] = Mesh(root, name, cwd=root)
            agents[name].join()
        with env(PI_MESH_HOSTNAME="another-host"):
            agents["dead"] = Mesh(root, "dead", cwd=root)
            agents["dead"].join(pid=4242)  # an owner on another host: judged by heartbeat
        live_claims: list[tuple[str, str, str]] = []  # (holder, path, kind)
        tiny_claims: list[tuple[str, str, str]] = []  # made with a 1 ms TTL: may not have expired yet

        def attempt_claim(holder: str, path: str, k: str, ttl: str) -> None:
            given_ = path + "/" if k == "dir" and path != "." else path
            k = "dir" if path == "." else k
            conflict = any(h != holder and ref_overlap(path, k, c, ck) for h, c, ck in live_claims)
            maybe = any(h != holder and ref_overlap(path, k, c, ck) for h, c, ck in tiny_claims)
            try:
                made = agents[holder].reserve([given_], f"{holder} works", ttl=ttl)
            except ReservationConflict as e:
                assert conflict or maybe, (holder, path, k, live_claims)
                assert {r.holder for r in e.conflicts} <= {h for h, _, _ in live_claims + tiny_claims} - {holder}
                return
            assert not conflict, (holder, path, k, live_claims)
            assert [(r.path, r.kind) for r in made] == [(path, k)]
            # re-claiming one's own path renews it, with the new TTL (a tiny one makes it expire)
            if (holder, path, k) in live_claims:
                live_claims.remove((holder, path, k))
            if ttl != "0.001":
                live_claims.append((holder, path, k))
            else:
                tiny_claims.append((holder, path, k))

        # the soon-dead agent claims first, then its heartbeat goes stale
        for holder, path, k, _ in attempts:
            if holder == "dead":
                attempt_claim(holder, path, k, "5m")
        agents["dead"].store.update_agent("dead", None, {"last_seen": "2000-01-01T00:00:00.000000Z"})
        live_claims[:] = [c for c in live_claims if c[0] != "dead"]
        for holder, path, k, tiny in attempts:
            if holder != "dead" and not tiny:
                attempt_claim(holder, path, k, "5m")
        # claims with a tiny TTL are made last and are expired by the time anyone looks
        tiny_made = False
        for holder, path, k, tiny in attempts:
            if holder != "dead" and tiny:
                attempt_claim(holder, path, k, "0.001")
                tiny_made = True
        if tiny_made:
            time.sleep(0.005)

        unjoined = Mesh(root, None, cwd=root)
        for path, k in probes:
            given_ = path + "/" if k == "dir" and path != "." else path
            for who, m in (("me", agents["me"]), ("p1", agents["p1"]), (None, unjoined)):
                if k == "dir" or path == ".":
                    expect = [h for h, c, ck in live_claims if h != who and ref_overlap(path, "dir", c, ck)]
                else:
                    expect = [h for h, c, ck in live_claims if h != who and ref_covers(c, ck, path)]
                got = m.check(given_)
                assert (got is not None) == bool(expect), (who, given_, live_claims)
                if got is not None:
                    assert got.holder in expect
        assert sorted((r.holder, r.path, r.kind) for r in unjoined.reservations()) == sorted(live_claims)


@pytest.mark.parametrize("spelling", ["NFD", "NFC", "NFD/", "NFC/"])
def test_a_directory_named_in_nfd_on_disk_is_claimed_as_a_directory(tmp_path, spelling):
    """macOS writes names in NFD; canonical paths are NFC.  Claiming such a directory, however it is
    spelled, must cover what is inside it."""
    root = str(tmp_path)
    nfd = unicodedata.normalize("NFD", "caf\u00e9")
    os.makedirs(os.path.join(root, nfd))
    a, b = Mesh(root, "a", cwd=root), Mesh(root, "b", cwd=root)
    a.join()
    b.join()
    name = unicodedata.normalize(spelling[:3], "caf\u00e9") + spelling[3:]
    [r] = a.reserve([name], "unicode")
    assert (r.path, r.kind) == ("caf\u00e9", "dir")
    for inside in (nfd + "/x.py", "caf\u00e9/x.py", os.path.join(root, nfd, "deep", "y.py")):
        assert b.check(inside) is not None, inside


# -- the fast resolver behind canonicalise -------------------------------------------


@pytest.fixture(scope="module")
def link_tree():
    """Dirs, files and symlinks of every kind: in the tree, out of it, dangling, looping, to a parent."""
    base = os.path.realpath(tempfile.mkdtemp(prefix="pi-mesh-resolve-"))
    root = os.path.join(base, "root")
    os.makedirs(os.path.join(root, "d", "e"))
    os.makedirs(os.path.join(base, "out"))
    with open(os.path.join(root, "d", "f"), "w") as fh:
        fh.write("x")
    links = {"ld": "d", "lf": "d/f", "lx": "nowhere/x", "lo": os.path.join(base, "out"), "lp": "..",
             "lloop": "lloop", "la": os.path.join(root, "d", "e"), "lr": "."}
    for name, target in links.items():
        os.symlink(target, os.path.join(root, name))
    os.symlink("../ld", os.path.join(root, "d", "up"))
    yield root
    shutil.rmtree(base, ignore_errors=True)


resolve_name = st.sampled_from(["d", "e", "f", "missing", "ld", "lf", "lx", "lo", "lp", "lloop", "la", "lr", "up",
                                ".", "..", "", "caf\u00e9"])


@given(names=st.lists(resolve_name, min_size=1, max_size=6))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_resolve_is_realpath(link_tree, names):
    """The walk from the real root gives exactly what os.path.realpath gives, for any spelling."""
    path = link_tree + "/" + "/".join(names)
    assert P._resolve(path, link_tree) == P._realpath(path)


def test_resolve_looks_only_below_the_root(link_tree, monkeypatch):
    """The point of it: a plain path beneath the root costs one lstat per component below the root."""
    seen = []
    real_lstat = os.lstat
    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: (seen.append(p), real_lstat(p, *a, **k))[1])
    assert P._resolve(link_tree + "/d/e/new.py", link_tree) == link_tree + "/d/e/new.py"
    assert seen == [link_tree + "/d", link_tree + "/d/e", link_tree + "/d/e/new.py"]
