"""Issue 20: local workers die with the ``ldr`` process that launched them; a rerun waits for (or
refuses) workers a killed invocation left on the same folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ldr_plugin.errors import LdrError
from ldr_plugin.launchers.guard import orphans, process_alive, process_identity, wait_for_orphans


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(predicate, timeout_s: float, step_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def _worker_pids(folder: Path) -> list[int]:
    pids = []
    for path in (folder / ".locks").glob("worker-*.json"):
        try:
            pids.append(json.loads(path.read_text())["worker"][1])
        except (OSError, ValueError, KeyError):
            pass
    return pids


@pytest.mark.slow
def test_local_workers_die_with_their_killed_launcher(tmp_path):
    folder, logs = tmp_path / "out", tmp_path / "logs"
    script = textwrap.dedent(f"""
        import time
        from ldr_plugin.launchers.launch import launch
        from ldr_plugin.launchers.resources import Resources
        launch([600, 600], time.sleep, "local", Resources.from_env(local_workers=2, folder={str(logs)!r}),
               folder={str(folder)!r}, progress=False)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        assert _wait_for(lambda: len(_worker_pids(folder)) == 2, 240), "workers did not start"
        workers = _worker_pids(folder)
        assert all(_alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 20), "orphaned workers still run"
        assert orphans(folder) == []
    finally:
        parent.kill()
        for pid in _worker_pids(folder):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_rerun_waits_for_then_refuses_an_orphan_that_keeps_running(tmp_path):
    folder = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    launcher = list(process_identity(dead.pid))
    launcher[2] = launcher[2] or "gone"
    assert not process_alive(tuple(launcher)) or launcher[1] == dead.pid
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from ldr_plugin.launchers.guard import hold_worker_lock
        hold_worker_lock({str(folder)!r}, ("{launcher[0]}", {dead.pid}, "{launcher[2]}"))
        print("held", flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        [orphan] = orphans(folder)
        assert orphan["worker"][1] == holder.pid
        with pytest.raises(LdrError, match=f"pid {holder.pid} on "):
            wait_for_orphans(folder, timeout_s=1.0)
    finally:
        holder.kill()
        holder.wait()
    wait_for_orphans(folder, timeout_s=5.0)  # gone: the stale lock file is removed
    assert list((folder / ".locks").glob("worker-*.json")) == []


def test_a_live_launchers_workers_are_not_orphans(tmp_path):
    folder = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        from ldr_plugin.launchers.guard import hold_worker_lock, process_identity
        hold_worker_lock({str(folder)!r}, process_identity(os.getppid()))
        print("held", flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert orphans(folder) == []  # a concurrent invocation: per-cell locks make it safe
        wait_for_orphans(folder, timeout_s=0.5)
    finally:
        holder.kill()
        holder.wait()
