"""Canonical paths and the overlap algebra of reservations.

Every path that reaches a reservation or a check goes through
:func:`canonicalise`, on both sides, so that no spelling of a path can slip
past a claim on another spelling:

1. a leading ``@`` is stripped (Pi's way to mention a file), ``~`` expanded;
2. a relative path is taken relative to the caller's working directory;
3. symlinks are resolved through the longest existing prefix (the file may not
   exist yet), and ``.``, ``..`` and ``//`` collapse on the way
   (:func:`os.path.realpath`, non-strict; for a plain path beneath the root,
   only the components below the already-resolved root are looked at);
4. the result is put in Unicode NFC, and each component is case folded when
   the file system it is looked up on folds case (detected, never assumed:
   :func:`fold_by_fs`) - per mount, so a FAT image mounted at
   ``vendor/share`` inside an ext4 project folds ``vendor/share/AUTH/x`` to
   ``vendor/share/auth/x`` while ``vendor/Other`` keeps its case;
5. it is stored relative to the project root as a POSIX path; the root itself
   is ``"."``.  A path outside the root has no canonical form (``None``): it
   can never be claimed and is never blocked.

Claims come in two kinds: a ``dir`` claim covers everything beneath it, a
``file`` claim exactly one path.  Two claims :func:`overlap` when either
covers the other; the relation is symmetric by construction.

This module is on the per-call guard path: standard library only, no imports
beyond ``os`` and ``unicodedata``.
"""

from __future__ import annotations

import os

ROOT = "."
DIR = "dir"
FILE = "file"


def normalise_root(root: str) -> str:
    """The project root as compared against: absolute, real, NFC."""
    return _nfc(_realpath(os.path.abspath(os.path.expanduser(root))))


def as_given(path: str) -> str:
    """The path a tool argument means: a leading ``@`` (how harnesses quote a file to the model) dropped,
    then a leading ``~`` expanded.  The one place this is done."""
    if path.startswith("@"):
        path = path[1:]
    return os.path.expanduser(path) if path.startswith("~") else path


def canonicalise(path: str, cwd: str, root: str, casefold: bool = False) -> str | None:
    """Return the canonical project-relative form of ``path``, or ``None`` if it lies outside ``root``.

    ``root`` must come from :func:`normalise_root`.  Raises ``ValueError`` for
    an empty path or one containing NUL.
    """
    if not isinstance(path, str) or path == "" or "\x00" in path:
        shown = repr(path) if not isinstance(path, str) or len(path) <= 200 else repr(path[:200]) + "..."
        raise ValueError(f"invalid path {shown}")
    if path == "@":
        raise ValueError("invalid path '@'")
    path = as_given(path)
    if not os.path.isabs(path):
        path = os.path.join(cwd, path)
    full = _nfc(_resolve(path, root))
    rel = relative_to_root(full, root, casefold)
    if rel is None or rel == ROOT or casefold:
        return rel  # the project's own file system folds: every component is folded already
    return fold_by_fs(rel, root, False)


# st_dev -> whether names are looked up case-insensitively there; a root path -> its st_dev
_DEV_FOLDS: dict[int, bool] = {}
_ROOT_DEV: dict[str, int] = {}


def fold_by_fs(rel: str, root: str, root_folds: bool | None = None) -> str:
    """``rel`` (canonical, unfolded, beneath ``root``) with each component folded that is looked up on a
    case-insensitive file system.

    A name is looked up in its parent directory, so component *i* folds when the directory holding it -
    component *i-1*, the root for the first - lives on a file system that folds case; the mount point
    itself is a name in the file system above it and keeps its case.  A component that does not exist
    yet would be made in the deepest existing directory, whose file system decides.  Devices are told
    apart by ``st_dev`` (one ``lstat`` per existing component) and each is probed once per process
    (:func:`lookups_fold`); ``root_folds`` is the root's own answer when the caller has it already.
    """
    try:
        root_dev = _ROOT_DEV[root]
    except KeyError:
        try:
            root_dev = _ROOT_DEV.setdefault(root, os.lstat(root).st_dev)
        except OSError:
            return rel
    if root_folds is not None:
        _DEV_FOLDS.setdefault(root_dev, root_folds)
    names = rel.split("/")
    out = []
    cur, dev, exists = root, root_dev, True
    for name in names:
        folds = _DEV_FOLDS.get(dev)
        if folds is None:
            folds = lookups_fold(cur, name)
            if folds is not None:  # unknown (an unwritable directory) is asked again next time
                _DEV_FOLDS[dev] = folds
        out.append(name.casefold() if folds else name)
        if exists:
            cur = cur + "/" + name if cur != "/" else "/" + name
            try:
                dev = os.lstat(cur).st_dev
            except OSError:
                exists = False  # the rest would be made in ``cur``'s parent: same file system
    return "/".join(out)


def lookups_fold(directory: str, name: str | None = None) -> bool | None:
    """Whether names in ``directory`` are looked up case-insensitively.

    When ``name`` exists there and has a cased letter, its swapped-case spelling is looked up (one
    ``stat``: absent means case-sensitive, the same inode means folding); otherwise - or when both
    spellings exist as different inodes, as on FUSE file systems that number each looked-up name anew -
    a temporary file is made in ``directory`` and its other spelling looked up.  ``None`` when that
    cannot be made (a directory nobody here may write to: nothing will be written there either).
    """
    if name and name.swapcase() != name:
        try:
            a = os.lstat(os.path.join(directory, name))
        except OSError:
            a = None
        if a is not None:
            try:
                b = os.lstat(os.path.join(directory, name.swapcase()))
            except OSError:
                return False
            if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
                return True
    return _probe_file(directory)


def relative_to_root(full: str, root: str, casefold: bool = False) -> str | None:
    """``full`` (absolute, resolved) relative to ``root``, or ``None`` outside it."""
    if casefold:
        full, root = full.casefold(), root.casefold()
    if full == root:
        return ROOT
    prefix = root if root.endswith("/") else root + "/"
    if full.startswith(prefix):
        return full[len(prefix):]
    return None


def fold(canonical: str, casefold: bool) -> str:
    """A canonical path as compared on this filesystem."""
    return canonical.casefold() if casefold else canonical


def is_within(path: str, ancestor: str) -> bool:
    """True when canonical ``path`` is ``ancestor`` or lies beneath it."""
    return ancestor == ROOT or path == ancestor or path.startswith(ancestor + "/")


def covers(claim: str, kind: str, path: str) -> bool:
    """True when a claim of ``kind`` on ``claim`` covers the path ``path``."""
    return path == claim or (kind == DIR and is_within(path, claim))


def overlap(a: str, a_kind: str, b: str, b_kind: str) -> bool:
    """True when two claims (or a claim and a checked target) overlap: either covers the other."""
    return covers(a, a_kind, b) or covers(b, b_kind, a)


def prefixes(path: str) -> list[str]:
    """Every claim that could cover ``path``: the root, each ancestor, and the path itself."""
    if path == ROOT:
        return [ROOT]
    out = [ROOT]
    i = path.find("/")
    while i != -1:
        out.append(path[:i])
        i = path.find("/", i + 1)
    out.append(path)
    return out


def detect_case_insensitive(directory: str) -> bool:
    """Whether the filesystem holding ``directory`` folds case.

    Compares the directory with the same name in swapped case (one ``stat``);
    a name with no cased letter, or a swapped name that exists as another
    inode, is probed with a temporary file instead.
    """
    parent, name = os.path.split(os.path.abspath(directory).rstrip("/") or "/")
    swapped = name.swapcase()
    if swapped != name:
        try:
            a = os.stat(directory)
            b = os.stat(os.path.join(parent, swapped))
        except OSError:
            return False
        if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
            return True
        # Both spellings exist as different inodes: two real directories on a case-sensitive
        # filesystem, or a case-insensitive one without stable inode numbers (FUSE, e.g. fusefat
        # numbers each looked-up name anew).  The probe file below tells them apart.
    return bool(_probe_file(directory))


def _nfc(s: str) -> str:
    if s.isascii():
        return s
    import unicodedata  # only for non-ASCII paths

    return unicodedata.normalize("NFC", s)


def _resolve(path: str, root: str) -> str:
    """``os.path.realpath(path)`` (non-strict), walking from the real ``root`` when ``path`` is a plain
    path beneath it.

    realpath ``lstat``s every component from ``/``; the root's components are already resolved
    (:func:`normalise_root`), so only those below it need a look.  That is most of the cost of a
    guard check, which runs before every edit.  Anything else - a ``.``, ``..`` or empty component,
    a symlink on the way, a path not spelled under the root - is left to realpath itself; a hypothesis
    test compares the two on trees full of symlinks.
    """
    if root != "/" and path.startswith(root) and path[len(root):len(root) + 1] == "/":
        rest = path[len(root) + 1:]
        names = rest.split("/")
        if "" not in names and "." not in names and ".." not in names:
            cur = root
            for name in names:
                cur = cur + "/" + name
                try:
                    mode = os.lstat(cur).st_mode
                except OSError:
                    return path  # the rest does not exist (or cannot be looked at): nothing more to resolve
                if mode & 0o170000 == 0o120000:  # S_IFLNK, without importing stat on the guard path
                    return _realpath(path)
            return path
    return _realpath(path)


def _realpath(path: str) -> str:
    real = os.path.realpath(path)
    # POSIX lets an implementation treat a leading "//" specially; Linux does not.
    while real.startswith("//"):
        real = real[1:]
    return real


def _probe_file(directory: str) -> bool | None:
    """Create a probe file in ``directory`` and ask for it in the other case: ``True`` when the file system
    folds case, ``None`` when no file can be made there."""
    probe = os.path.join(directory, f".case-probe-{os.getpid()}-a")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        os.close(fd)
    except OSError:
        return None
    try:
        return os.path.exists(os.path.join(directory, f".case-probe-{os.getpid()}-A"))
    finally:
        try:
            os.unlink(probe)
        except OSError:
            pass
