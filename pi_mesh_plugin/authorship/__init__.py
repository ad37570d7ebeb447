"""Authorship: who wrote each uncommitted change, and git commands that would sweep it up or throw it away.

In a shared checkout the work agents lose is rarely lost to two edits of one
file at the same instant; it is lost to one agent's git command: a commit
that sweeps a peer's files out of the shared index, a ``git stash`` or
``git checkout .`` that discards a peer's hour of work.  This package keeps
the facts needed to refuse those commands and says whose work is at stake.

* :mod:`.ledger` - the **edit ledger**.  The post-call hook
  (:mod:`pi_mesh_plugin.plugins.activity`) records every write a call made
  (edit/write tools, the files of a shell command the parser sees) as
  ``{path, agent, session, tree, blob, deleted, size, mtime_ns, tool, ts}``:
  the git blob id of the content the write left.  The store keeps the latest
  entry per path of each working tree (``tree`` is ``host:root``), as plain
  files under ``.pi/mesh/ledger/`` or a PostgreSQL table.  A file whose
  content still has that blob id is that agent's; one that changed since was
  "changed outside any agent" (a person, a script, a shell command the parser
  cannot read).
* :mod:`.gitstate` - reading ``git status --porcelain=v2`` and the index.
* :mod:`.commits` - **commits carry only your own work**: the pre-commit guard
  refuses a commit whose staged content of a file is exactly what another
  *live* agent last wrote there, unless that agent handed it over
  (``pi-mesh handover PATH… --to NAME``) or a person overrides
  (``PI_MESH_OVERRIDE=1 git commit …``, or ``git commit --no-verify``).
  ``pi-mesh commit -m MSG`` stages and commits exactly the caller's own files.
* :mod:`.destructive` - **git commands that discard a live peer's uncommitted
  changes are refused** through the shell guard: ``checkout``/``restore`` of
  paths, ``checkout -f``, ``switch --discard-changes``, ``reset --hard``,
  ``stash``, ``clean -f``, ``checkout-index -f``, ``read-tree -u --reset``,
  ``--autostash``, and a branch switch, merge, rebase or pull that would
  overwrite such files.
* :mod:`.radar` - **conflict radar**: files with uncommitted changes of two
  agents, and across linked worktrees the changes that would conflict at
  merge time (``git merge-tree --write-tree``), plus the warning for an agent
  about to edit a file another worktree has changed and not committed.

Which changes are an agent's is decided per file by the last write (a file
edited by two agents belongs to the later one; the radar lists such files).
The identity of the caller is ``$PI_MESH_AGENT`` (``--agent``), else the live
agent whose owner process is an ancestor of the process asking (the harness
that runs the agent also runs its git).
"""
