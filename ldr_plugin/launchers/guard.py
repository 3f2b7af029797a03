"""No orphans: local workers stop when the ``ldr`` process that launched them dies, and a rerun
waits for (or refuses) workers an earlier, killed invocation left on the same folder.

A local job runs under submitit's controller, not under ``ldr`` itself, so a worker watches the
launching process by identity (pid and, on Linux, its start time, so a reused pid does not fool
it): once a second, and when that process is gone the worker prints why and kills itself (what it
was computing is lost, never half-written: every file write is atomic, and a rerun resumes it).
Each worker also holds an exclusive ``flock`` on ``<folder>/.locks/worker-<host>-<pid>.json``,
which names it and its launcher; the kernel releases the lock when the worker dies. Before
launching, :func:`wait_for_orphans` looks at those files: a held lock whose launcher is dead is an
orphan, waited for (it stops within seconds) or, if it outlives ``timeout_s``, refused with its pid
and host; a held lock of a live launcher is a concurrent invocation (per-cell locks make that
safe); an unheld one is stale and removed.

>>> identity = process_identity()
>>> process_alive(identity)
True
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from ldr_plugin.errors import LdrError

LOCK_DIR = ".locks"
Identity = tuple[str, int, str]  # (host, pid, start time from /proc or "")
_HELD: list = []  # this worker's lock file objects, kept open for the life of the process


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def process_identity(pid: int | None = None) -> Identity:
    """(host, pid, start time) of a process: enough to tell it from a later process with its pid."""
    pid = os.getpid() if pid is None else pid
    return socket.gethostname(), pid, _start_time(pid)


def process_alive(identity: Identity) -> bool:
    """Is the process alive? (Processes of other hosts count as alive: they cannot be checked.)"""
    host, pid, started = identity
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not started or _start_time(pid) in ("", started)


def watch_launcher(launcher: Identity, interval_s: float = 1.0) -> None:
    """In a worker: a daemon thread that kills this process (and the process group it then leads:
    commands it runs, such as DomainBed's train.py) once ``launcher`` is gone."""
    try:
        os.setpgrp()  # a group of its own: this worker and what it starts, nothing else
    except OSError:
        pass

    def watch() -> None:
        while process_alive(launcher):
            time.sleep(interval_s)
        print(f"[ldr] launcher {launcher[1]} on {launcher[0]} is gone; worker {os.getpid()} stops "
              "(its unfinished item is recomputed by a rerun)", file=sys.stderr, flush=True)
        if os.getpgrp() == os.getpid():  # this worker leads its own group: its subprocesses go too
            os.killpg(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="ldr-launcher-watch", daemon=True).start()


def hold_worker_lock(folder: str | os.PathLike, launcher: Identity) -> Path:
    """In a worker: lock ``<folder>/.locks/worker-<host>-<pid>.json`` (naming it and its launcher)
    for the life of this process."""
    path = Path(folder) / LOCK_DIR / f"worker-{socket.gethostname()}-{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held open on purpose until the process ends
    fcntl.flock(handle, fcntl.LOCK_EX)
    handle.seek(0)
    handle.truncate()
    json.dump({"worker": list(process_identity()), "launcher": list(launcher), "started": time.time()}, handle)
    handle.flush()
    _HELD.append(handle)
    return path


def _holder(path: Path) -> dict | None:
    """The lock file's content if a live process holds its lock, else None (the file is removed)."""
    try:
        with open(path, "r+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    return json.loads(handle.read() or "{}")
                except ValueError:
                    return {}
            path.unlink(missing_ok=True)  # stale: its worker is gone
            return None
    except FileNotFoundError:
        return None


def orphans(folder: str | os.PathLike) -> list[dict]:
    """Live workers on ``folder`` whose launcher is dead."""
    found = []
    for path in sorted((Path(folder) / LOCK_DIR).glob("worker-*.json")):
        info = _holder(path)
        if info is not None and not process_alive(tuple(info.get("launcher") or ("", 0, ""))):
            found.append({**info, "path": str(path)})
    return found


def wait_for_orphans(folder: str | os.PathLike, timeout_s: float = 30.0) -> None:
    """Wait until no orphaned worker of a killed invocation runs on ``folder``; refuse after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = orphans(folder)
        if not left:
            return
        if time.monotonic() > deadline:
            who = ", ".join(f"pid {o['worker'][1]} on {o['worker'][0]}" for o in left if o.get("worker"))
            raise LdrError(f"{folder}: workers of an earlier, killed invocation still run ({who or 'see .locks/'}); "
                           "stop them (kill <pid>) or wait, then rerun")
        time.sleep(0.5)
