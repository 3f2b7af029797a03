"""Fault tolerance: locks, killed writers, concurrent writers of one folder, SIGKILLed scoring workers.

The scoring fault test scores 200 tiny cells through submitit's local executor while workers are
SIGKILLed 20 times. Its model source and metric come from a fake third-party distribution (entry
points in a ``*.dist-info`` on the workers' PYTHONPATH), so it also proves that external sources
work in launched jobs. After a final re-run every cell has exactly one valid record, none partial,
none duplicated, with the values an inline run computes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest

from ldr_plugin.check import check_results
from ldr_plugin.errors import LdrError
from ldr_plugin.launchers.resources import Resources
from ldr_plugin.results import metric, new_record, read_record, write_record
from ldr_plugin.results.io import lock_path, write_record_locked
from ldr_plugin.scoring.run import run_cells


def _record(i: int, writer: str = "w0", value: float = 0.5):
    return new_record(
        kind="kstar", model_id=f"toy:m{i}", dataset="digits", split="test", layer="penultimate",
        metric_family="kstar", seed=0, metrics={"g": metric(value, higher_is_better=False)},
        detail={"writer": writer}, command=["test"],
    )


def test_valid_record_is_kept_unless_overwrite(tmp_path):
    path, written = write_record_locked(_record(0, "first"), tmp_path)
    assert written
    assert write_record_locked(_record(0, "second"), tmp_path) == (path, False)
    assert read_record(path).detail["writer"] == "first"
    assert write_record(_record(0, "third"), tmp_path, overwrite=True) == path
    assert read_record(path).detail["writer"] == "third"


def test_truncated_record_and_stale_temp_files_are_replaced(tmp_path):
    path, _ = write_record_locked(_record(0), tmp_path)
    other, _ = write_record_locked(_record(1), tmp_path)
    path.write_text(path.read_text()[:40])
    (tmp_path / f".tmp-{path.name}.dead1").write_text("{")
    (tmp_path / f".tmp-{other.name}.dead2").write_text("{")
    assert write_record_locked(_record(0, "again"), tmp_path) == (path, True)
    assert read_record(path).detail["writer"] == "again"
    assert sorted(p.kind for p in check_results(tmp_path).problems) == ["partial"]  # only the other cell's temp
    assert write_record_locked(_record(1), tmp_path) == (other, False)  # skipping also cleans up
    assert check_results(tmp_path).ok


_HOLD = """
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1]); lock.acquire(); print("held", flush=True); time.sleep(60)
"""


def test_lock_times_out_with_a_clear_error_and_is_freed_when_its_holder_is_killed(tmp_path):
    path = tmp_path / write_record_locked(_record(0), tmp_path)[0].name
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(lock_path(path))], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LdrError, match=r"\.locks"):
            write_record_locked(_record(0), tmp_path, overwrite=True, timeout_s=0.5)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        start = time.monotonic()
        assert write_record_locked(_record(0, "after"), tmp_path, overwrite=True, timeout_s=5)[1]
        assert time.monotonic() - start < 2
    finally:
        holder.kill()
        holder.wait()


def _writer(folder: str, writer: str, order: list[int], overwrite: bool, queue) -> None:
    template = _record(0, writer)  # new_record's provenance is slow (git): vary a template instead
    written = []
    for i in order:
        record = msgspec.structs.replace(template, model_id=f"toy:m{i}",
                                         metrics={"g": metric(i / 100, higher_is_better=False)})
        if write_record_locked(record, folder, overwrite=overwrite)[1]:
            written.append(i)
    queue.put((writer, written))


def _run_two_writers(folder, orders, overwrite):
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(folder), f"w{k}", order, overwrite, queue)) for k, order in enumerate(orders)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def test_two_processes_writing_one_folder_lose_nothing(tmp_path):
    shared = list(range(150))
    orders = [shared + list(range(1000, 1025)), shared + list(range(2000, 2025))]  # same order: most contention
    written = _run_two_writers(tmp_path, orders, overwrite=False)
    expected = set(shared) | set(range(1000, 1025)) | set(range(2000, 2025))
    all_written = written["w0"] + written["w1"]
    # every cell written exactly once (the lock serialises check-then-write), none lost
    assert sorted(all_written) == sorted(expected)
    report = check_results(tmp_path)
    assert report.ok and report.n_valid == len(expected) == 200
    for path in tmp_path.glob("*.result.json"):
        rec = json.loads(path.read_text())
        writer = rec["detail"]["writer"]
        assert int(rec["model_id"].split("m")[-1]) in written[writer]


def test_two_processes_overwriting_the_same_cells_leave_whole_files(tmp_path):
    cells = list(range(40))
    _run_two_writers(tmp_path, [cells * 3, cells[::-1] * 3], overwrite=True)
    report = check_results(tmp_path)
    assert report.ok and report.n_valid == 40
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


N_MODELS, N_SEEDS, N_KILLS = 50, 4, 20


def _worker_pids(folder: Path) -> list[int]:
    """The submitit worker processes of one executor folder (``python -m submitit.core._submit FOLDER``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"submitit.core._submit" in argv and str(folder).encode() in argv:
            pids.append(int(proc.name))
    return pids


def _killer(folder: Path, budget: int, done: threading.Event, rng: random.Random, killed: list[int]) -> None:
    while not done.is_set() and len(killed) < budget:
        time.sleep(rng.uniform(0.3, 3.0))
        alive = [p for p in _worker_pids(folder) if p not in killed]
        if alive and not done.is_set():
            pid = rng.choice(alive)
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds workers through /proc")
def test_killed_workers_lose_nothing_and_corrupt_nothing(tiny_plugin, tmp_path):
    from ldr_tiny_source import CentroidGap

    from ldr_plugin.scoring.cells import ScoreCell, record_paths, score_cell

    cells = [ScoreCell(f"tiny:net{m}", "digits", seed=s, n_per_class=5) for m in range(N_MODELS) for s in range(N_SEEDS)]
    out = tmp_path / "scores"
    kwargs = {"metrics": {"centroid_gap": CentroidGap()}, "cache_dir": str(tmp_path / "cache"), "device": "cpu"}
    rng = random.Random(0)
    killed: list[int] = []
    failed_rounds = 0
    for round_ in range(3 * N_KILLS):
        if len(killed) >= N_KILLS:
            break
        folder = tmp_path / "logs" / f"round{round_}"
        done = threading.Event()
        killer = threading.Thread(target=_killer, args=(folder, N_KILLS, done, rng, killed))
        killer.start()
        try:
            outcomes = run_cells(cells, out, executor="local", progress=False,
                                 resources=Resources(folder=str(folder), local_workers=2), **kwargs)
        finally:
            done.set()
            killer.join()
        errors = [o.error for o in outcomes if o.error]
        failed_rounds += bool(errors)
        assert all("without a result" in e and "log: " in e for e in errors), errors[:1]
    assert len(killed) == N_KILLS and failed_rounds > 0

    final = run_cells(cells, out, executor="local", progress=False,
                      resources=Resources(folder=str(tmp_path / "logs" / "final"), local_workers=2), **kwargs)
    assert [o.error for o in final if o.error] == []
    report = check_results(out)
    assert report.ok, report.format()
    records = sorted(out.glob("*.result.json"))
    assert report.n_valid == len(records) == len(cells) == 200
    assert sorted(str(record_paths(c, out, ["centroid_gap"])["centroid_gap"]) for c in cells) == [str(p) for p in records]
    assert not list(out.glob(".tmp-*"))

    # the same values as an inline run into a fresh folder (a sample of cells)
    fresh = tmp_path / "inline"
    for cell in random.Random(1).sample(cells, 5):
        inline = json.loads(score_cell(cell, fresh, metrics=kwargs["metrics"], progress=False)[0].read_text())
        launched = json.loads(record_paths(cell, out, ["centroid_gap"])["centroid_gap"].read_text())
        assert inline["metrics"] == launched["metrics"] and inline["n_samples"] == launched["n_samples"] == 50
