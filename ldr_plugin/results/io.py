"""Result files on disk: atomic writes, per-cell locks, and reading every record of a folder.

A write goes to a temporary file in the same directory, is fsynced, then ``os.replace``d (atomic
on POSIX and Windows): a reader sees the old file or the whole new one, never a part, and a crash
leaves at most a ``.tmp-*`` file that readers ignore and ``ldr results check`` reports.

Each record file ``DIR/name.result.json`` has a lock ``DIR/.locks/name.result.json.lock`` (an
``fcntl``/``flock`` lock through :mod:`filelock`; the kernel releases it when its holder dies, even
by SIGKILL, so a killed worker never leaves a cell locked). Under the lock a writer removes the
temporary files a killed writer of the same cell left behind, keeps a valid existing record unless
asked to overwrite, and writes atomically.

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
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import filelock

from ldr_plugin.errors import LdrError
from ldr_plugin.files import UnreadableFile, display, read_bytes
from ldr_plugin.results.problems import Problem
from ldr_plugin.results.record import (
    KEY_FIELDS,
    RECORD_SUFFIX,
    Record,
    RecordError,
    cell_key,
    decode_record,
    encode_record,
    record_filename,
)

TMP_PREFIX = ".tmp-"
LOCK_DIR = ".locks"
DEFAULT_TIMEOUT_S = 600.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; a result file is as readable as any other
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_with(path: str | os.PathLike, writer: Callable[[IO], None], mode: str = "wb") -> Path:
    """Let ``writer(handle)`` fill the file (e.g. ``np.savez``, ``fig.savefig``), atomically."""
    with atomic_open(path, mode) as handle:
        writer(handle)
    return Path(path)


def lock_path(path: str | os.PathLike) -> Path:
    """Where the lock of the file ``path`` lives (a hidden ``.locks`` folder beside it)."""
    path = Path(path)
    return path.parent / LOCK_DIR / (path.name + ".lock")


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Path]:
    """Hold the exclusive lock of ``path`` for the ``with`` block; :class:`LdrError` after ``timeout_s``."""
    lock_file = lock_path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lock_file), timeout=timeout_s)
    try:
        lock.acquire(poll_interval=0.01)  # critical sections are short
    except filelock.Timeout as exc:
        raise LdrError(f"{path}: another process has held its lock {lock_file} for more than {timeout_s:.0f} s") from exc
    try:
        yield Path(path)
    finally:
        lock.release()


def stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Temporary files that writers of ``path`` left behind (``.tmp-<name>.*``)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    escaped = "".join(f"[{c}]" if c in "*?[]" else c for c in path.name)
    return sorted(path.parent.glob(f"{TMP_PREFIX}{escaped}.*"))


def write_record_locked(record: Record, directory: str | os.PathLike, *, overwrite: bool = False,
                        timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[Path, bool]:
    """Write ``record`` into ``directory`` under its cell lock; return (path, whether it was written).

    A valid record already at the path is kept (``False``) unless ``overwrite``; an invalid or
    truncated one is replaced. Leftover temporary files of the same cell (a killed writer's) are removed.
    """
    path = Path(directory) / record_filename(record)
    data = encode_record(record)
    with file_lock(path, timeout_s):
        for tmp in stale_temp_files(path):  # only while holding the lock: no live writer owns them
            tmp.unlink(missing_ok=True)
        if not overwrite and path.exists():
            try:
                read_record(path)
                return path, False
            except RecordError:
                pass
        atomic_write_bytes(path, data)
    return path, True


def write_record(record: Record, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write atomically into ``directory`` under the cell's lock (a valid record there is kept unless
    ``overwrite``); returns the path."""
    return write_record_locked(record, directory, overwrite=overwrite)[0]


def read_record(path: str | os.PathLike) -> Record:
    """Read and validate one record file; errors name the file and the field."""
    path = Path(path)
    try:
        data = read_bytes(path, what="record")
    except UnreadableFile as exc:
        raise RecordError(str(exc)) from exc
    return decode_record(data, source=display(path))


def _hidden(path: Path, root: Path) -> bool:
    return path.name.startswith(".") or LOCK_DIR in path.relative_to(root).parts


def iter_record_paths(directory: str | os.PathLike) -> list[Path]:
    """Every record file below ``directory`` (recursively), sorted; temporary and lock files excluded."""
    root = Path(directory)
    return sorted(p for p in root.rglob("*" + RECORD_SUFFIX) if not _hidden(p, root))


def scan_records(directories: list[str | os.PathLike]) -> tuple[list[tuple[Path, Record]], list[Problem]]:
    """Every valid record below the folders (the first of each cell, in sorted path order), and the
    problems met: ``partial`` (not whole JSON), ``invalid`` / ``schema_version`` (the validator's
    message, naming the field), ``duplicate`` (one cell in two files: the later copies are ignored)."""
    valid: list[tuple[Path, Record]] = []
    problems: list[Problem] = []
    first: dict[tuple, Path] = {}
    for path in (p for directory in directories for p in iter_record_paths(directory)):
        try:
            record = read_record(path)
        except RecordError as exc:
            message = str(exc).removeprefix(f"{display(path)}: ")
            unreadable = isinstance(exc.__cause__, UnreadableFile) and ("symlink loop" in message
                                                                       or not message.startswith("cannot read"))
            kind = ("unreadable" if unreadable
                    else "partial" if "not JSON" in message or "cannot read" in message
                    else "schema_version" if message.startswith("schema_version") else "invalid")
            problems.append(Problem(kind, display(path), message))
            continue
        key = cell_key(record)
        if key in first:
            cell = ", ".join(f"{f}={v}" for f, v in zip(KEY_FIELDS, key))
            problems.append(Problem("duplicate", display(path), f"this copy is ignored: same cell ({cell}) as {first[key]}"))
            continue
        first[key] = path
        valid.append((path, record))
    return valid, problems


def temp_file_problems(directory: str | os.PathLike) -> list[Problem]:
    """A ``partial`` problem per temporary file a writer that died left below ``directory``."""
    root = Path(directory)
    return [Problem("partial", str(p), "temporary file left by a writer that died")
            for p in sorted(root.rglob(TMP_PREFIX + "*")) if p.is_file() and LOCK_DIR not in p.relative_to(root).parts]
