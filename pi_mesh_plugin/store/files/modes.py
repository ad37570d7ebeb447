"""Who may read the mesh: the mode of every file and folder the file store creates.

``[mesh] share`` in hooks.toml (or ``$PI_MESH_SHARE``) states it:

* ``"private"`` (the default): the mesh is its owner's.  Files are created
  ``0600``, folders ``0700``, and ``.pi/mesh`` itself is kept ``0700`` - so no
  other local user can read an agent's mail, claims' reasons, the feed or the
  ledger, nor write into them.
* ``"group"``: agents of several users who share a Unix group (the group of
  ``.pi/mesh``) share one mesh.  Files are ``0660``, folders ``0770`` and setgid,
  so everything made below ``.pi/mesh`` belongs to that group whoever made it;
  the modes are set with ``fchmod``/``chmod`` after each create, so a umask of
  ``022`` cannot take the group's write bit away.

The policy is the process's (set when a file store is opened, from its
configuration): a process serves one project, or several with one
``hooks.toml`` setting.  What it does not do: names are not authenticated.
Any process that can write the mesh - every agent of its owner in private
mode, every member of the group in group mode - can register, send and claim
under any agent name; the modes decide *who* can do that, not *as whom*.
"""

from __future__ import annotations

import os

POLICIES = {"private": (0o600, 0o700), "group": (0o660, 0o2770)}
FILE, DIR = POLICIES["private"]
GROUP = False


def set_share(share: str) -> None:
    """Use ``share`` (``private`` or ``group``) for every file and folder created from now on."""
    global FILE, DIR, GROUP
    FILE, DIR = POLICIES[share]
    GROUP = share == "group"


def fix_fd(fd: int) -> None:
    """Give a file just created on ``fd`` its mode where the umask may have narrowed it (group mode)."""
    if GROUP:
        try:
            os.fchmod(fd, FILE)
        except PermissionError:
            pass  # an existing file of another member of the group: its maker set the mode


def fix_dir(path: str) -> None:
    """Give a folder just made its mode (the setgid bit and the group's bits, which mkdir and the umask drop)."""
    if GROUP:
        os.chmod(path, DIR)


def tighten(path: str) -> None:
    """Bring an existing folder of ours (``.pi/mesh``, made by an older version or by hand) to the policy's mode:
    private takes every bit beyond ``0700`` away, group sets ``2770``.  A folder of another user is left alone."""
    try:
        st = os.lstat(path)
        if st.st_uid != os.geteuid() or (st.st_mode & 0o7777) == DIR:
            return
        os.chmod(path, DIR)
    except OSError:
        pass  # reported by the operation that needs the folder
