"""The directory of prometheus_client's multiprocess mode, kept by gunicorn's
master (gunicorn.conf.py's hooks).

prometheus_client picks its storage once, when it is first imported: the
variable must be set before anything imports it, in the master, so that
every worker forked from it writes files. This module therefore imports
prometheus_client only where the variable is already set.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Set when the service made the directory itself, so that the master removes
# it again at exit (an operator's directory is only emptied at start).
OWNED_VARIABLE = "WX_METRICS_DIR_OWNED"


def prepare(environ: MutableMapping[str, str], reexec: bool = False) -> Path:
    """Before any worker starts: an empty directory for this start. Files of
    a previous start would be added to this one's counts, so the operator's
    directory is emptied of them; without one, the service makes its own.

    `reexec`: this master was started by the running one (gunicorn's USR2
    upgrade), whose workers still serve and write there: it carries on with
    the same directory, as is, and owns it from now on (the variables came
    with the environment)."""
    given = environ.get(MULTIPROC_VARIABLE, "").strip()
    if given and reexec:
        return Path(given)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        environ.pop(OWNED_VARIABLE, None)
    else:
        path = Path(tempfile.mkdtemp(prefix="wx-metrics-"))
        environ[MULTIPROC_VARIABLE] = str(path)
        environ[OWNED_VARIABLE] = "1"
    return path


def worker_exited(pid: int) -> None:
    """child_exit: drop the dead worker's live-gauge files. Its counters stay:
    they are part of the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def cleanup(environ: MutableMapping[str, str], handed_over: bool = False) -> None:
    """on_exit: remove the directory the service made itself, unless a new
    master (USR2) has taken it over."""
    if handed_over:
        return
    if environ.pop(OWNED_VARIABLE, None) and (path := environ.get(MULTIPROC_VARIABLE)):
        shutil.rmtree(path, ignore_errors=True)
