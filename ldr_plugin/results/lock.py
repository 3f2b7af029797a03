"""Per-cell write locks, so that many processes writing one results folder never corrupt a cell.

Each record file ``DIR/name.result.json`` has a lock ``DIR/.locks/name.result.json.lock`` (an
``fcntl``/``flock`` lock through :mod:`filelock`; the kernel releases it when its holder dies, even
by SIGKILL, so a killed worker never leaves a cell locked). Under the lock a writer removes the
temporary files a killed writer of the same cell left behind, keeps a valid existing record unless
asked to overwrite, and writes atomically (temp file + rename).

>>> import tempfile
>>> from ldr_plugin.results import metric, new_record
>>> rec = new_record(kind="kstar", model_id="digits:raw", dataset="digits", split="all", layer="pixels",
...                  metric_family="kstar", seed=0, metrics={"g": metric(0.5, higher_is_better=False)})
>>> folder = tempfile.mkdtemp()
>>> write_record_locked(rec, folder)[1], write_record_locked(rec, folder)[1]  # written, then kept
(True, False)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock

from ldr_plugin.errors import LdrError
from ldr_plugin.results.atomic import TMP_PREFIX, atomic_write_text
from ldr_plugin.results.record import RecordError, read_record, record_filename, validate_record

LOCK_DIR = ".locks"
LOCK_SUFFIX = ".lock"
DEFAULT_TIMEOUT_S = 600.0


def lock_path(path: str | os.PathLike) -> Path:
    """Where the lock of the file ``path`` lives (a hidden ``.locks`` folder beside it)."""
    path = Path(path)
    return path.parent / LOCK_DIR / (path.name + LOCK_SUFFIX)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Path]:
    """Hold the exclusive lock of ``path`` for the ``with`` block; :class:`LdrError` after ``timeout_s``."""
    lock_file = lock_path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lock_file), timeout=timeout_s)
    try:
        lock.acquire(poll_interval=0.01)  # critical sections are short
    except filelock.Timeout as exc:
        raise LdrError(
            f"{path}: another process has held its lock {lock_file} for more than {timeout_s:.0f} s"
        ) from exc
    try:
        yield Path(path)
    finally:
        lock.release()


def stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Temporary files that writers of ``path`` left behind (``.tmp-<name>.*``)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f"{TMP_PREFIX}{_glob_escape(path.name)}.*"))


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def remove_stale_temp_files(path: str | os.PathLike) -> int:
    """Delete the leftovers of killed writers of ``path``; call only while holding its lock."""
    removed = 0
    for tmp in stale_temp_files(path):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    return removed


def _valid_record_at(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        read_record(path)
    except RecordError:
        return False
    return True


def write_record_locked(
    record: dict[str, Any],
    directory: str | os.PathLike,
    *,
    overwrite: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[Path, bool]:
    """Write ``record`` into ``directory`` under its cell lock; return (path, whether it was written).

    A valid record already at the path is kept (``False``) unless ``overwrite``; an invalid or
    truncated one is replaced. Leftover temporary files of the same cell are removed.
    """
    validate_record(record)
    path = Path(directory) / record_filename(record)
    text = json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n"
    with file_lock(path, timeout_s):
        remove_stale_temp_files(path)
        if not overwrite and _valid_record_at(path):
            return path, False
        atomic_write_text(path, text)
    return path, True
