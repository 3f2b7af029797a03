"""Reader of DomainBed sweep folders: ``<sweep>/<run>/results.jsonl`` one level deep, plus ``done`` marks.

DomainBed's own loader stops at the first bad line; this one reads everything it can and reports
the rest: a malformed or truncated JSON line is named by file and line number and skipped (the
count is kept), a record missing a field DomainBed's model selection needs is skipped with the
field named, a run without ``done`` is kept but marked incomplete, and duplicate records (a run
relaunched into the same folder, or a run folder copied twice) are detected.

>>> sweep = read_sweep(["path/to/sweep"])          # doctest: +SKIP
>>> len(sweep.records), sweep.incomplete_runs()    # doctest: +SKIP
"""

from __future__ import annotations

import gc
import itertools
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ldr_plugin.errors import LdrError
from ldr_plugin.results.sweep_columns import Columns, args_key, columns_from_records, concat_columns
from ldr_plugin.results.sweep_lines import (
    SUPPORTED_SWEEP_SCHEMAS,
    Problem,
    dumps_sorted,
    loads,
    read_lines,
)

try:  # msgspec decodes only the fields selection reads; without it every file takes the orjson path
    from ldr_plugin.results.sweep_fast import decode_files, regular
except ModuleNotFoundError:  # pragma: no cover - exercised where msgspec is absent
    decode_files = regular = None

__all__ = ["SUPPORTED_SWEEP_SCHEMAS", "Problem", "Sweep", "SweepRun", "read_run_records", "read_sweep"]


@dataclass
class SweepRun:
    """One run folder of a sweep (``folder`` as text; ``path`` the same as a Path)."""

    run_id: str
    folder: str
    done: bool
    n_records: int = 0
    truncated: bool = False
    duplicate_of: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.folder)


class Sweep:
    """Records of one or more sweep folders, with the run each record came from.

    ``columns`` (what model selection reads) is filled by the reader; ``records`` (full dicts) are
    parsed from the kept file bytes only when first asked for.
    """

    def __init__(self, records: list[dict[str, Any]] | None = None, record_runs: list[str] | None = None,
                 runs: dict[str, SweepRun] | None = None, problems: list[Problem] | None = None,
                 sources: list[str] | None = None) -> None:
        self._records = records
        self.record_runs: list[str] = record_runs if record_runs is not None else []
        self.runs: dict[str, SweepRun] = runs if runs is not None else {}
        self.problems: list[Problem] = problems if problems is not None else []
        self.sources: list[str] = sources if sources is not None else []
        self._parts: list[_RunPart] = []
        self._columns: Columns | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every kept record as a dict, in read order (parsed on first use)."""
        if self._records is None:
            self._records = [record for part in self._parts for record in part.records()]
        return self._records

    @property
    def columns(self) -> Columns:
        """The fields model selection reads, as arrays in record order."""
        if self._columns is None:
            self._columns = columns_from_records(self.records)
        return self._columns

    def __len__(self) -> int:
        """Number of kept records (what DomainBed prints as "Total records")."""
        return len(self._records) if self._records is not None else len(self.columns)

    def skipped_lines(self) -> int:
        """How many lines were not read as records (malformed, truncated, invalid, duplicate)."""
        return sum(1 for p in self.problems if p.line is not None)

    def incomplete_runs(self) -> list[str]:
        """Run keys without a ``done`` file (DomainBed counts their records; we mark them)."""
        return sorted(k for k, r in self.runs.items() if not r.done and r.duplicate_of is None)


@dataclass(slots=True)
class _RunPart:
    """The kept records of one run file: columns now, full dicts on demand."""

    columns: Columns
    args_value: dict[str, Any] | None  # args of the first kept record (None: parse ``args_raw`` when asked)
    args_raw: Any = None  # fast path: the first line's ``args`` JSON text
    key: Any = None  # fast path: model selection's key of the run (``args_key``)
    data: bytes | None = None  # fast path: the file, and the 0-based lines kept
    lines: list[int] | None = None  # None: all of them
    parsed: list[dict[str, Any]] | None = None  # line-by-line path: the records themselves
    truncated: bool = False
    rows: tuple[int, int] | None = None  # these records are rows start:stop of `columns` (shared by files)
    problems: list[Problem] | None = None
    may_repeat: bool = True  # False: known to hold each step once

    def selection_key(self) -> Any:
        """Model selection's key of the run (equal for runs with equal arguments), None if it has none."""
        if self.key is None:
            self.key = _selection_key(self.args)
        return self.key

    @property
    def args(self) -> dict[str, Any]:
        """The run's arguments (``args`` of its first kept record)."""
        if self.args_value is None:
            self.args_value = orjson.loads(memoryview(self.args_raw))
        return self.args_value

    def own_columns(self) -> Columns:
        """This file's columns alone."""
        if self.rows is not None:
            columns = self.columns.take(np.arange(*self.rows))
            columns.args_keys = [columns.args_keys[int(i)] for i in dict.fromkeys(columns.args_ix.tolist())]
            columns.args_ix = np.zeros(len(columns), dtype=np.int64)
            self.columns = columns
            self.rows = None
        return self.columns

    def __len__(self) -> int:
        return self.rows[1] - self.rows[0] if self.rows is not None else len(self.columns)

    def records(self) -> list[dict[str, Any]]:
        if self.parsed is not None:
            return self.parsed
        assert self.data is not None
        lines = self.data.split(b"\n")
        return [loads(lines[i]) for i in (self.lines if self.lines is not None else range(len(self)))]


def _slow_part(path: str, data: bytes) -> _RunPart:
    problems: list[Problem] = []
    records = read_lines(path, data, problems)
    return _RunPart(columns_from_records(records), records[0]["args"] if records else {}, parsed=records,
                    truncated=bool(data) and not data.endswith(b"\n"), problems=problems)


_CHUNK = 1 << 16  # one read() takes a whole results.jsonl of a typical run (a few KB)


def _read_bytes(path: str) -> bytes | None:
    """The bytes of a file, or None if there is no such file (not a run folder: DomainBed skips those).

    open + read + close: a read of a regular file returns less than asked only at its end (POSIX),
    so a short first read is the whole file and needs no fstat or second read.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:
            return data
        chunks = [data]
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
        return b"".join(chunks)
    except IsADirectoryError:
        return None
    finally:
        os.close(fd)


def read_run_records(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The valid records of one run folder's ``results.jsonl`` in order; ``[]`` without the file.
    Bad lines and a torn last line are skipped, as :func:`read_sweep` skips them."""
    path = os.path.join(os.fspath(run_dir), "results.jsonl")
    data = _read_bytes(path)
    return [] if data is None else read_lines(path, data, [])


def _read_parts(paths: list[str]) -> list[_RunPart | None]:
    """One part per results.jsonl (None where there is no file): regular files decoded all at once."""
    read = [_read_bytes(path) for path in paths]
    n_lines = [regular(data) if data is not None and decode_files is not None else 0 for data in read]
    fast = [i for i, n in enumerate(n_lines) if n]
    sample = fast[:: max(1, len(fast) // 500)]  # a first guess of the widest file; decode_files widens it
    width = max((read[i][: read[i].find(b"\n")].count(b'_out_acc"') for i in sample), default=0)
    if fast:
        columns, args, keys, repeats = decode_files([read[i] for i in fast], [n_lines[i] for i in fast], width + 1)
    parts: list[_RunPart | None] = [None] * len(paths)
    start = 0
    for i, raw, key, repeat in zip(fast, args, keys, repeats.tolist()) if fast else ():
        if raw is not None:
            stop = start + n_lines[i]
            parts[i] = _RunPart(columns, None, raw, key, data=read[i], rows=(start, stop), may_repeat=repeat)
            start = stop
    for i, data in enumerate(read):
        if data is not None and parts[i] is None:
            parts[i] = _slow_part(paths[i], data)
    return parts


def _dedupe_steps(part: _RunPart, path: str, problems: list[Problem]) -> _RunPart:
    """Keep the last record of each step (a relaunched run appends a fresh run to the same file)."""
    if not part.may_repeat:
        return part
    steps = (part.columns.step[slice(*part.rows)] if part.rows else part.columns.step).tolist()
    last: dict[int, int] = {}
    for i, step in enumerate(steps):
        last[step] = i
    if len(last) == len(steps):
        return part
    kept = sorted(last.values())
    problems.append(
        Problem("duplicate_step", path, None,
                f"{len(steps) - len(kept)} records repeat a step already in this file "
                "(run relaunched?); the last record of each step is kept")
    )
    part.columns = part.own_columns().take(kept)
    if part.parsed is not None:
        part.parsed = [part.parsed[i] for i in kept]
        part.args_value = part.parsed[0]["args"]
    else:
        part.lines = [(part.lines or range(len(steps)))[i] for i in kept]
    return part


def _run_identity(args: dict[str, Any]) -> bytes:
    args = args.copy()
    args.pop("output_dir", None)
    return dumps_sorted(args)


def _selection_key(args: dict[str, Any]) -> Any:
    """Model selection's key of a run (equal for runs with equal arguments), or None if it has none."""
    try:
        key = args_key(args)
        hash(key)
    except (KeyError, TypeError):
        return None
    return key


def _list_run_dirs(root: Path, order: str) -> list[str]:
    names = os.listdir(root)
    return names if order == "listdir" else sorted(names)


def _progress(names: list[str], root: Path, progress: bool):
    if not progress:
        return names
    from tqdm import tqdm

    return tqdm(names, desc=f"reading {root.name}", unit="run", leave=False)


def read_sweep(
    input_dirs: list[str | os.PathLike] | str | os.PathLike,
    *,
    keep_duplicates: bool = False,
    order: str = "sorted",
    progress: bool = True,
) -> Sweep:
    """Read every ``<dir>/*/results.jsonl`` of the given sweep folders.

    ``keep_duplicates=True`` keeps repeated steps and copied runs as DomainBed does (they change its
    numbers); the default keeps one copy and reports the rest. ``order="listdir"`` visits run folders
    in ``os.listdir`` order as DomainBed does; the default sorted order makes outputs reproducible.
    """
    if isinstance(input_dirs, (str, os.PathLike)):
        input_dirs = [input_dirs]
    enabled = gc.isenabled()
    gc.disable()  # tens of thousands of small objects, none cyclic: collections would only cost time
    try:
        return _read_sweep(input_dirs, keep_duplicates, order, progress)
    finally:
        if enabled:
            gc.enable()


def _read_sweep(input_dirs: list, keep_duplicates: bool, order: str, progress: bool) -> Sweep:
    sweep = Sweep()
    found: list[tuple[str, str, str, _RunPart]] = []  # (run key, folder, results path, part) in read order
    for root in map(Path, input_dirs):
        if not root.is_dir():
            raise LdrError(f"sweep folder {root} does not exist or is not a directory")
        sweep.sources.append(str(root))
        base = str(root)
        names = _list_run_dirs(root, order)
        paths = [f"{base}{os.sep}{name}{os.sep}results.jsonl" for name in names]
        for name, path, part in zip(names, paths, _read_parts(_progress(paths, root, progress))):
            if part is not None:
                key = name if len(input_dirs) == 1 else f"{root}/{name}"
                found.append((key, f"{base}{os.sep}{name}", path, part))
    # only runs sharing model selection's key with another run can have equal arguments
    shared = Counter(part.selection_key() for *_, part in found if len(part)) if not keep_duplicates else {}
    shared = {k for k, n in shared.items() if n > 1 or k is None}
    parts: dict[str, _RunPart] = {}
    identities: dict[bytes, str] = {}  # arguments (sorted JSON, output_dir aside) -> run key, shared keys only
    done = [os.path.exists(f"{folder}{os.sep}done") for _, folder, _, _ in found]
    for (key, folder, path, part), finished in zip(found, done):
        if part.problems:
            sweep.problems.extend(part.problems)
        run = SweepRun(key, folder, finished, truncated=part.truncated)
        if part.may_repeat and not keep_duplicates:
            part = _dedupe_steps(part, path, sweep.problems)
        n = len(part)
        if n and not keep_duplicates and part.selection_key() in shared:
            identity = _run_identity(part.args)
            first = identities.get(identity)
            if first is not None:
                prefer_new = run.done and not sweep.runs[first].done
                _mark_duplicate_run(sweep, run, first, n, prefer_new)
                if not prefer_new:
                    continue
                del parts[first]
            identities[identity] = key
        run.n_records = n
        sweep.runs[key] = run
        parts[key] = part
    _assemble(sweep, list(parts.items()))
    return sweep


def _ranges(spans: list[tuple[int, int]]) -> np.ndarray:
    """The concatenation of ``range(start, stop)`` for each span, built without a Python loop over rows."""
    starts, stops = np.array(spans, dtype=np.int64).reshape(-1, 2).T
    lengths = stops - starts
    return np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(int(lengths.sum()))


def _assemble(sweep: Sweep, parts: list[tuple[str, _RunPart]]) -> None:
    """Columns of the kept parts in order: consecutive rows of a shared batch are taken in one go."""
    sweep._parts = [part for _, part in parts]
    segments: list[Columns] = []
    spans: list[tuple[int, int]] = []
    shared = None
    for part in sweep._parts:
        if part.rows is not None and (shared is None or part.columns is shared):
            shared = part.columns
            spans.append(part.rows)
            continue
        if spans:
            segments.append(shared.take(_ranges(spans)))
            spans, shared = [], None
        if part.rows is not None:
            shared = part.columns
            spans.append(part.rows)
        else:
            segments.append(part.columns)
    if spans:
        segments.append(shared.take(_ranges(spans)))
    sweep._columns = concat_columns(segments)
    sweep.record_runs = list(itertools.chain.from_iterable(itertools.repeat(key, len(part)) for key, part in parts))


def _mark_duplicate_run(sweep: Sweep, run: SweepRun, first: str, n_records: int, prefer_new: bool) -> None:
    """Record a run folder whose arguments repeat an earlier one; keep the finished copy."""
    if prefer_new:  # the earlier copy is unfinished, this one has `done`: drop the earlier records
        sweep.runs[first].duplicate_of = run.run_id
        sweep.runs[first].n_records = 0
        msg = f"same arguments as run {run.run_id} (which has `done`); its records are ignored"
        sweep.problems.append(Problem("duplicate_run", str(sweep.runs[first].path), None, msg))
    else:
        run.duplicate_of = first
        sweep.runs[run.run_id] = run
        msg = f"same arguments as run {first}; its {n_records} records are ignored"
        sweep.problems.append(Problem("duplicate_run", str(run.path), None, msg))
