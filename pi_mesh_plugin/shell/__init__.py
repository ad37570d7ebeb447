"""The paths a shell command would write, for guarding ``bash`` calls.

With ``guard = ["edit", "write", "bash"]`` in hooks.toml the guard asks
:func:`shell_write_targets` which paths a ``bash`` call's command would
write, and blocks the call when one of them lies inside another agent's live
claim - with the same message as for ``edit``.  The command is parsed with
``bashlex`` (a port of bash's own grammar; imported only when a ``bash`` call
is guarded), never matched with regular expressions, and the syntax tree is
walked:

* redirections ``>``, ``>>``, ``>|``, ``&>``, ``&>>``, ``>&FILE``, ``<>``
  (not ``2>&1``, not ``<``), on simple commands, groups and loops, including
  a heredoc feeding a file (``cat > f <<'EOF'``);
* writers: ``tee [-a]``, ``sed -i``/``--in-place`` (``-i.bak``, ``-Ei``),
  ``perl -i``/``-pi``, ``mv`` (sources and destination), ``cp``, ``ln``,
  ``install`` (destination, ``-t DIR``, a destination directory receives
  ``DIR/basename(source)``), ``rm`` (``-r`` makes it a directory),
  ``rmdir``, ``unlink``, ``touch``, ``truncate``, ``mkdir``, ``chmod``/
  ``chown``/``chgrp``, ``dd of=``, ``sort -o``, ``uniq IN OUT``,
  ``curl -o``, ``wget -O``, ``tar x``/``tar cf``, ``unzip``, ``patch``,
  ``shred``, ``sponge``, ``ed``/``ex``, ``rsync`` (local destination),
  ``find … -delete``/``-exec WRITER {}``/``-fprint``, the in-place
  formatters (``black``, ``isort``, ``ruff format``/``--fix``,
  ``prettier --write``, ``gofmt -w``, ``clang-format -i``, ``rustfmt``,
  ``eslint --fix`` …) and the package managers that rewrite a manifest, its
  lock file and install tree (``npm install``, ``yarn add``, ``pnpm add``,
  ``bun add``, ``poetry add``, ``uv add``/``sync``, ``cargo add``,
  ``go get``/``go mod tidy``);
* git: ``checkout [REV] -- PATH`` (and ``checkout PATH``), ``restore``
  (not ``--staged`` alone), ``mv``, ``rm`` (not ``--cached``), ``clean``;
  and the commands that rewrite the whole working tree - ``reset --hard``,
  ``stash`` (push/pop/apply), ``switch``, ``merge``, ``rebase``, ``pull``,
  ``cherry-pick``, ``revert``, ``am``, ``apply`` - count as writing the
  project (``git -C DIR`` is followed);
* structure: ``;``, ``&&``, ``||``, ``|``, ``&``, ``( … )``, ``{ …; }``,
  ``if``/``for``/``while``/functions, ``$( … )`` and ``<( … )``/``>( … )``,
  ``bash -c '…'``/``sh -c``/``eval '…'`` (parsed again, recursively),
  ``bash <<'EOF'`` (the heredoc is parsed as the script), the prefixes
  ``env``, ``sudo``, ``doas``, ``command``, ``exec``, ``nice``, ``nohup``,
  ``time``, ``timeout``, ``stdbuf``, ``ionice``, ``xargs``, and ``cd``/
  ``pushd``/``popd`` (later relative paths follow the directory).
* shell variables assigned a literal value earlier in the same command
  (``F=src/a.py; sed -i … "$F"``) and ``for`` loop variables over literal
  words are substituted;
* paths built at run time from the event's cwd: ``$PWD``, ``${PWD:?}``,
  ``$(pwd)``, backquoted ``pwd``, ``~+``, ``~-``/``$OLDPWD``,
  ``$(git rev-parse --show-toplevel)``/``--show-cdup``, ``$(realpath X)``,
  ``$(dirname X)``, ``$(mktemp …)``, assignments of them (``ROOT=$(pwd)``),
  ``${X:-default}`` (the default counts), ``$'…'``/``$"…"`` quoting, and
  ``/proc/self/cwd/``;
* links made earlier in the same command (``ln -s src/auth a && echo x >
  a/login.py``, hard links too) are followed;
* ``cd``/``pushd``/``cd -``, ``env -C``, ``sudo -D``, ``unshare -w``,
  ``chroot``; a ``cd`` to a directory named only at run time makes later
  relative writes count as anywhere in the project (blocked only while a
  claim exists, with a note saying why);
* functions defined in the command (called with their arguments as ``$1``…,
  ``$@``), ``set -- …``/``shift``, ``bash -c STRING _ ARGS…``;
* wrappers: ``setsid``, ``flock F`` (F is created), ``taskset``, ``chrt``,
  ``fakeroot``, ``su -c``, ``runuser``, ``script -c`` (and its typescript),
  ``unshare``, ``strace -o``, ``prlimit``, ``setpriv``, ``watch``, ``chroot``,
  ``env --``, ``nsenter``, ``numactl``, ``valgrind`` … (:mod:`.prefixes`);
* more writers (:mod:`.tools`): ``gzip``/``bzip2``/``xz``/``zstd``/``lz4``,
  ``split``, ``mktemp``, ``mkfifo``/``mknod``, ``zip`` (``-m``), ``openssl …
  -out``, ``sqlite3 FILE``, ``vim``/``vi``/``nvim`` (``-c 'w F'``), awk
  (``gawk -i inplace``, ``print > "F"``, ``system()``), sed scripts' ``w F``
  and ``e CMD``; git ``worktree add``, ``clone``, ``init``, ``archive -o``,
  ``format-patch -o``, ``bundle create``, ``checkout -f``.
* a source operand is only read: ``cp src/auth/x.py .`` writes ``./x.py``,
  and a destination that is a directory (``dir/``, ``.``, or one on disk)
  is written only at the names landing in it (``cp x src/``).

The corpora ``tests/corpora/shell_writes.txt`` and ``shell_harmless.txt``
are run for real by ``tests/test_shell_corpus.py``.

What cannot be seen (and is therefore not blocked):

* the value of a variable set outside the command or from a substitution
  (``"$FILE"``, ``$(git ls-files)``); a target whose *literal* part names a
  directory (``src/auth/$name.py``) counts as that whole directory;
* ``eval``/``bash -c`` of a computed string, ``source`` of a file, a command
  piped into a shell (``echo … | sh``);
* programs that write files themselves: scripts (``./build.sh``,
  ``python script.py``), ``python -c``, ``node -e``, ``perl -e``, ``make``,
  package managers, compilers (``-o`` of arbitrary tools) … - only the kernel
  (the sandbox) can stop those;
* paths a writer reads from stdin (``… | xargs sed -i …``): for ``xargs`` the
  unseen items are taken as "anything in the current directory", so such a
  command counts as writing that directory;
* ``git checkout NAME`` without ``--`` is read as a path named NAME; the
  branch switch it may be is not seen (``git switch`` is).

Globs expand at run time: a glob (``*``, ``?``, ``[``, ``{a,b}``) counts as
its literal directory prefix, a directory claim-wise (``rm src/*.pyc`` writes
``src/``).

``bashlex`` lacks a few constructs that write nothing - the ``time`` keyword,
``[[ … ]]``, ``(( … ))``, ``$(( … ))`` - so a command it rejects is parsed
again with them blanked out.  A command it still cannot parse (``case``,
``select``, arrays, unbalanced quotes, a substitution inside ``[[ … ]]`` …) is
not waved through and not blocked outright either: every word it contains is taken as a directory
it may write, so it is blocked exactly when it mentions a path inside (or
above) another agent's claim, with a note saying why.  Blocking every
unparsable command would refuse harmless commands in a mesh where nobody
claims anything; letting them pass would make ``guard = bash`` trivially
evadable.  (With ``on_store_error = "allow"`` the guard ignores those guessed
paths and checks only what was parsed.)

The package: :mod:`.parse` (bashlex, and the retry without the constructs it
lacks), :mod:`.walk` (the syntax-tree walk: chains, nesting, ``cd``,
variables), :mod:`.words` (a word's values: quotes, variables, globs),
:mod:`.values` (parameter expansions and the substitutions known before
the command runs), :mod:`.prefixes` (``env``, ``sudo``, ``xargs`` …),
:mod:`.commands` (the table of writers) with :mod:`.fileops`, :mod:`.tools`
and :mod:`.git` (their argument rules)
and :mod:`.options` (option parsing), :mod:`.fallback` (the conservative
reading of what cannot be parsed).
"""

from __future__ import annotations

from .walk import Targets, Walker
from .words import State

__all__ = ["Targets", "shell_commands", "shell_write_targets"]


def shell_commands(command: str) -> list[list[str]]:
    """The simple commands ``command`` runs, as argument lists (command name first, without its
    directory; ``env``/``sudo``/``nice``… prefixes removed; ``bash -c``/``eval`` strings followed).
    A word that depends on run-time values appears as its literal prefix.  For activity tracking."""
    w = Walker(Targets())
    w.script(command, State(), 0)
    out: list[list[str]] = []
    for c in w.commands:
        if c not in out:
            out.append(c)
    return out


def shell_write_targets(command: str, cwd: str | None = None) -> Targets:
    """The ``(path, kind)`` pairs the shell ``command`` would write; kind is ``"file"`` or ``"dir"``.

    Paths are relative to the shell's starting directory ``cwd`` unless
    absolute (``cd`` is followed); ``cwd`` (absolute, the event's) gives
    ``$PWD``, ``$(pwd)``, ``$(git rev-parse --show-toplevel)`` their values and
    lets a destination be recognised as an existing directory.  See the package
    docstring for what is and is not seen.
    """
    out = Targets()
    Walker(out).script(command, State(cwd if cwd and cwd.startswith("/") else None), 0)
    seen: set[tuple[str, str]] = set()
    uniq = Targets(t for t in out if not (t in seen or seen.add(t)))  # type: ignore[func-returns-value]
    uniq.note, uniq.rough = out.note, out.rough
    return uniq
