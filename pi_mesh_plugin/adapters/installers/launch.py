"""How installed hooks start ``pi-mesh``: the fastest start that is still this interpreter and this package.

A per-call hook starts a Python process for every tool call of the harness, so its start-up is the hook's
cost.  ``python -m pi_mesh_plugin`` pays for ``site`` (every ``.pth`` file of the environment, ``sitecustomize``),
for ``runpy`` and, where ``PYTHONDONTWRITEBYTECODE`` is set, for compiling every module from source on every
call.  The installed command instead runs this interpreter as::

    PYTHON -I -S -c "import os,sys;sys.path[:0]=[*PYTHONPATH, PACKAGE_PARENT, SITE_PACKAGES...];..." hook claude-code

* ``-I`` isolates: no ``PYTHON*`` environment variables (so ``PYTHONDONTWRITEBYTECODE`` cannot turn the
  byte-code cache off), no user site, and neither the working directory nor a script's directory on
  ``sys.path`` (a ``json.py`` in the project cannot shadow the standard library);
* ``-S`` skips ``site``; the directories it would have added are written into the command instead: the
  directory holding ``pi_mesh_plugin`` (a checkout, for an editable install) and this environment's
  site-packages (for pluggy and a third party's plugins).  ``$PYTHONPATH`` is honoured by hand, first, as
  Python would;
* ``.pth`` files are not read on this path.  A plugin that exists only through one (an editable install
  of the plugin) is reached because loading third-party plugins first runs :func:`site.addsitedir` on
  the site-packages directories (see :mod:`pi_mesh_plugin.loading`).

Re-run ``pi-mesh install ...`` after moving the environment or the checkout; ``doctor`` reports an installed
command whose interpreter or package directory no longer exists.
"""

from __future__ import annotations

import os
import shlex
import sys
import sysconfig

MARK = "pi_mesh_plugin.__main__"  # how an installed command is recognised as ours


def search_path() -> list[str]:
    """The directories the launched interpreter needs: the package's parent, then site-packages."""
    import pi_mesh_plugin

    out: list[str] = []
    for d in (os.path.dirname(os.path.dirname(os.path.abspath(pi_mesh_plugin.__file__))),
              sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]):
        if d not in out:
            out.append(d)
    return out


def python_code(paths: list[str] | None = None) -> str:
    paths = search_path() if paths is None else paths
    import json  # a JSON string is a Python string literal, and double-quoted like the rest of the code

    return ('import os,sys;sys.path[:0]=[*filter(None,os.environ.get("PYTHONPATH","").split(os.pathsep)),'
            f'*{json.dumps(paths)}];from {MARK} import main;sys.exit(main())')


def argv(args: list[str], python: str | None = None) -> list[str]:
    """The command, as an argument vector, that runs ``pi-mesh ARGS``."""
    return [python or sys.executable, "-I", "-S", "-c", python_code(), *args]


def command(args: list[str], python: str | None = None) -> str:
    """The same as one shell command line (for the harnesses' settings files)."""
    return shlex.join(argv(args, python))


def stale(command: object) -> str | None:
    """Why an installed command of ours no longer starts the fast way (``None``: it does): its interpreter or
    one of its directories is gone, or it is the older ``python -m pi_mesh_plugin`` form."""
    if not isinstance(command, str):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words:
        return None
    if not os.access(words[0], os.X_OK) and os.sep in words[0]:
        return f"runs {words[0]}, which is gone"
    if "-m" in words[1:3] and "pi_mesh_plugin" in words[1:4]:
        return "starts the slower way (python -m: site, runpy)"
    code = words[words.index("-c") + 1] if "-c" in words[:-1] else ""
    if MARK in code:
        import json

        start = code.find("*[", code.find("sys.path[:0]")) + 1
        try:
            dirs = json.JSONDecoder().raw_decode(code, start)[0]
        except ValueError:
            return None
        gone = [d for d in dirs if isinstance(d, str) and not os.path.isdir(d)]
        if gone:
            return f"puts {gone[0]} on its path, which is gone"
    return None
