"""Fault tolerance of result writing: locks, killed writers, concurrent writers of one folder."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from ldr_plugin.errors import LdrError
from ldr_plugin.results import metric, new_record, read_record, write_record
from ldr_plugin.results.check import check_results
from ldr_plugin.results.lock import lock_path, write_record_locked


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
    assert read_record(path)["detail"]["writer"] == "first"
    assert write_record(_record(0, "third"), tmp_path, overwrite=True) == path
    assert read_record(path)["detail"]["writer"] == "third"


def test_truncated_record_and_stale_temp_files_are_replaced(tmp_path):
    path, _ = write_record_locked(_record(0), tmp_path)
    other, _ = write_record_locked(_record(1), tmp_path)
    path.write_text(path.read_text()[:40])
    (tmp_path / f".tmp-{path.name}.dead1").write_text("{")
    (tmp_path / f".tmp-{other.name}.dead2").write_text("{")
    assert write_record_locked(_record(0, "again"), tmp_path) == (path, True)
    assert read_record(path)["detail"]["writer"] == "again"
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
        record = {**template, "model_id": f"toy:m{i}", "metrics": {"g": metric(i / 100, higher_is_better=False)}}
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
