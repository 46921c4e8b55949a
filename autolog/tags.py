"""Default tags every run gets: host, pid, Python, script, git commit, rank. Computed on the writer thread."""

from __future__ import annotations

import os
import platform
import socket
import sys
from functools import lru_cache
from pathlib import Path

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # torchrun, SLURM, LSF


def env_rank() -> int:
    """This process's rank as its launcher's environment gives it (the first of ``RANK_VARIABLES`` that is a
    number); 0 when none does (not a distributed worker)."""
    for var in RANK_VARIABLES:
        value = os.environ.get(var)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                continue
    return 0


def process_tags() -> dict[str, str]:
    """Tags describing this process (cached per pid, so a forked child reports its own pid)."""
    return dict(_process_tags(os.getpid()))


@lru_cache(maxsize=4)
def _process_tags(pid: int) -> tuple[tuple[str, str], ...]:
    tags = {
        "autolog.host": socket.gethostname(),
        "autolog.pid": str(pid),
        "autolog.python": platform.python_version(),
    }
    script = _script()
    if script is not None:
        tags["autolog.script"] = str(script)
        commit = git_commit(script.parent)
        if commit:
            tags["autolog.git_commit"] = commit
    for var in RANK_VARIABLES:
        if var in os.environ:
            tags["autolog.rank"] = os.environ[var]
            break
    return tuple(tags.items())


_script_override: Path | None = None


def set_script(path: Path) -> None:
    """``autolog run SCRIPT`` runs the script under its own module: name it as the run's script."""
    global _script_override
    _script_override = path.resolve()
    _process_tags.cache_clear()


def remember_script() -> None:
    """Note the running script now: CPython removes ``__main__.__file__`` once the script ends (before atexit)."""
    global _script_override
    if _script_override is None:
        path = getattr(sys.modules.get("__main__"), "__file__", None)
        if path:
            _script_override = Path(path).resolve()


def _script() -> Path | None:
    if _script_override is None:
        remember_script()
    return _script_override


def git_commit(start: Path) -> str | None:
    """The commit checked out in the git work tree holding ``start``, read from .git files (no subprocess)."""
    for folder in (start, *start.parents):
        git = folder / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (folder / text.split(":", 1)[1].strip()).resolve()
        if git.is_dir():
            return _resolve_head(git)
    return None


def _resolve_head(git: Path) -> str | None:
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.split(":", 1)[1].strip()
        common = git
        if (git / "commondir").is_file():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except OSError:
        return None
    return None
