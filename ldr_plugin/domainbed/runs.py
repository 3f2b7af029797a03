"""DomainBed run folders — ``<sweep>/<run>/results.jsonl`` one level deep, plus ``done`` marks: the one reader.

DomainBed's own loader stops at the first bad line; this one reads everything it can and reports
the rest as :class:`~ldr_plugin.results.problems.Problem`: a malformed or truncated JSON line is
named by file and line number and skipped, a record missing a field model selection needs is
skipped with the field named, a run without ``done`` is kept but marked incomplete, and duplicate
records (a run relaunched into the same folder, a run folder copied twice) are detected. Lines are
parsed by orjson (the stdlib for the ``NaN`` it refuses); what model selection reads goes into
:attr:`Sweep.columns` as each run is read, and record dicts are parsed again only if
:attr:`Sweep.records` is asked for (a 100,000-record sweep never holds 100,000 dicts at once).

>>> sweep = read_sweep(["path/to/sweep"])          # doctest: +SKIP
>>> len(sweep), sweep.incomplete_runs()            # doctest: +SKIP
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from ldr_plugin.domainbed.manifest import read_expected
from ldr_plugin.errors import LdrError
from ldr_plugin.files import UnreadableFile, display, read_bytes
from ldr_plugin.results.problems import Problem

SUPPORTED_SWEEP_SCHEMAS = (None, 1)  # DomainBed's own records carry no schema_version
ArgsKey = tuple[int, str, str, int, tuple[int, ...]]  # (trial_seed, dataset, algorithm, hparams_seed, test_envs)
_ARGS_FIELDS = {"algorithm": str, "dataset": str, "trial_seed": int, "hparams_seed": int, "test_envs": list}
RUN_FILES = ("results.jsonl", "out.txt", "err.txt", "model.pkl")
_MD5_DIR = re.compile(r"^[0-9a-f]{32}$")  # sweep.py names each job's directory by an md5
_OUT, _IN = ([f"env{e}_{split}_acc" for e in range(1000)] for split in ("out", "in"))  # record keys, made once


def loads(raw: bytes) -> Any:
    """One JSON value: orjson, or the stdlib for what orjson refuses (``NaN``, which DomainBed may write)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw)
        except RecursionError as exc:  # deeper than orjson's 1024 levels and the stdlib's stack
            raise ValueError("nested too deeply") from exc


def args_key(args: dict[str, Any]) -> ArgsKey:
    """The fields of a record's ``args`` that model selection groups by."""
    return (args["trial_seed"], args["dataset"], args["algorithm"], args["hparams_seed"], tuple(args["test_envs"]))


def _invalid(record: Any, run_args: list) -> str | None:
    """What is wrong with a record for model selection, or None (``run_args``: the last args found
    valid and their test-env accuracy keys; a run's records repeat its args, checked once)."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    version = record.get("schema_version")
    if version is not None and version not in SUPPORTED_SWEEP_SCHEMAS:
        return f"schema_version {version!r} is not supported (this reader knows {SUPPORTED_SWEEP_SCHEMAS[1:]})"
    args = record.get("args")
    if not run_args or args != run_args[0]:
        if not isinstance(args, dict):
            return "missing field 'args' (expected an object)"
        for name, typ in _ARGS_FIELDS.items():
            if not isinstance(args.get(name), typ) or isinstance(args.get(name), bool):
                return f"field 'args.{name}' should be {typ.__name__}, got {_short(args.get(name))}"
            if typ is int and not -(2**63) <= args[name] < 2**63:
                return f"field 'args.{name}' should be a 64-bit integer, got {_short(args[name])}"
        envs = args["test_envs"]
        if not envs or not all(isinstance(e, int) and not isinstance(e, bool) for e in envs):
            return f"field 'args.test_envs' should be a non-empty list of ints, got {_short(envs)}"
        if not all(0 <= e < len(_OUT) for e in envs):
            return f"field 'args.test_envs' should hold env indices 0..{len(_OUT) - 1}, got {_short(envs)}"
        run_args[:] = [args, [f"env{e}_{split}_acc" for e in envs for split in ("in", "out")]]
    if type(record.get("step")) is not int:
        return f"field 'step' should be int, got {record.get('step')!r}"
    for key in run_args[1]:
        if type(record.get(key)) not in (float, int):
            return f"field '{key}' (accuracy of a test env) should be a number, got {_short(record.get(key))}"
    for key, value in record.items():  # an accuracy selection could read is a fraction, never -50, NaN or 1e308
        if key[:3] == "env" and key[-4:] == "_acc":
            if type(value) in (float, int):
                if not 0 <= value <= 1:  # NaN fails both comparisons
                    return f"field '{key}' should be an accuracy in [0, 1], got {_short(value)}"
            elif value is not None or key[-8:] == "_out_acc":
                return f"field '{key}' should be a number, got {_short(value)}"
    return None


def _short(value: Any) -> str:
    """``repr`` of a value, cut to 60 characters (a 400-digit number stays one readable line)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def parse_run_file(path: str, data: bytes, problems: list[Problem]) -> list[tuple[int, dict[str, Any]]]:
    """(0-based line, record) of each valid record of one results.jsonl; bad lines become problems."""
    lines = data.split(b"\n")
    truncated = lines[-1] != b""  # a last line without its newline: the writer was killed
    records, run_args = [], []
    for i, raw in enumerate(lines if truncated else lines[:-1]):
        if not raw.strip():
            continue
        try:
            record = loads(raw)
        except ValueError as exc:  # orjson's and the stdlib's decode errors are ValueErrors
            last = truncated and i == len(lines) - 1
            what = "truncated last line (file does not end with a newline)" if last else "not JSON"
            problems.append(Problem("truncated_file" if last else "malformed_line", path,
                                    f"{what}: {exc}; line skipped", i + 1))
            continue
        wrong = _invalid(record, run_args)
        if wrong is None:
            records.append((i, record))
        else:
            kind = "schema_version" if wrong.startswith("schema_version") else "bad_record"
            problems.append(Problem(kind, path, f"{wrong}; line skipped", i + 1))
    return records


def read_run_file(run_dir: str | os.PathLike, problems: list[Problem]) -> tuple[bytes, list] | None:
    """(bytes, :func:`parse_run_file` of them) of a run folder's results.jsonl; None without one."""
    path = os.path.join(os.fspath(run_dir), "results.jsonl")
    try:
        data = read_bytes(path, what="results.jsonl")
    except UnreadableFile as exc:
        if isinstance(exc.__cause__, OSError) and exc.__cause__.errno in (errno.ENOENT, errno.ENOTDIR):
            return None  # not a run folder: DomainBed skips those too
        problems.append(Problem("unreadable", display(path), str(exc).removeprefix(f"{display(path)}: ")))
        return None  # a FIFO, a symlink loop, a directory named results.jsonl ...: named, never opened
    return data, parse_run_file(display(path), data, problems)


def read_run_records(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The valid records of one run folder in order (bad lines skipped); ``[]`` without results.jsonl."""
    found = read_run_file(run_dir, [])
    return [record for _, record in found[1]] if found else []


@dataclass
class Columns:
    """The fields model selection reads, one row per record: the index of its run's :data:`ArgsKey`,
    ``step``, ``n_out`` (how many consecutive ``env{i}_out_acc`` keys it has), and ``env{i}_in_acc``
    (test envs only) / ``env{i}_out_acc`` in two matrices (NaN where absent)."""

    args_keys: list[ArgsKey]
    args_ix: np.ndarray
    step: np.ndarray
    n_out: np.ndarray
    acc_in: np.ndarray
    acc_out: np.ndarray

    def __len__(self) -> int:
        return len(self.step)

    @classmethod
    def of(cls, records: list[dict[str, Any]]) -> Columns:
        """Columns of valid records (as :func:`parse_run_file` keeps them)."""
        rows = _Rows()
        rows.add(records)
        return rows.columns()


class _Rows:
    """Columns being filled record by record, in flat lists of numbers (no record dict is kept)."""

    def __init__(self) -> None:
        self.keys: dict[ArgsKey, int] = {}
        self.ix, self.steps, self.n_outs, self.widths, self.outs = [], [], [], [], []
        self.in_rows, self.in_envs, self.ins = [], [], []

    def add(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            key = args_key(record["args"])
            self.ix.append(self.keys.setdefault(key, len(self.keys)))
            n = 0
            while _OUT[n] in record:
                n += 1
            self.n_outs.append(n)
            self.widths.append(max(n, max(key[4]) + 1))
            self.outs += [record.get(name, np.nan) for name in _OUT[: self.widths[-1]]]
            self.in_rows += [len(self.steps)] * len(key[4])
            self.in_envs += key[4]
            self.ins += [record.get(_IN[e], np.nan) for e in key[4]]
            self.steps.append(record["step"])

    def columns(self, keep: np.ndarray | None = None) -> Columns:
        """The arrays, of the rows ``keep`` marks only (args keys renumbered in order of first use)."""
        ix, steps, n_outs, widths, in_rows, in_envs = (np.array(v, dtype=np.int64) for v in (
            self.ix, self.steps, self.n_outs, self.widths, self.in_rows, self.in_envs))
        outs, ins, keys = np.array(self.outs, dtype=np.float64), np.array(self.ins, dtype=np.float64), list(self.keys)
        if keep is not None:
            outs, ins, in_kept = outs[np.repeat(keep, widths)], ins[keep[in_rows]], keep[in_rows]
            in_rows, in_envs = (np.cumsum(keep) - 1)[in_rows[in_kept]], in_envs[in_kept]
            ix, steps, n_outs, widths = ix[keep], steps[keep], n_outs[keep], widths[keep]
            used, first = np.unique(ix, return_index=True)
            used = used[np.argsort(first)]  # the keys still used, in order of first use
            renumber = np.zeros(len(keys), dtype=np.int64)
            renumber[used] = np.arange(len(used))
            ix, keys = renumber[ix], [keys[i] for i in used]
        n, width = len(steps), int(widths.max(initial=0))
        acc_in, acc_out = np.full((n, width), np.nan), np.full((n, width), np.nan)
        acc_in[in_rows, in_envs] = ins
        row = np.repeat(np.arange(n), widths)
        acc_out[row, np.arange(len(row)) - np.repeat(np.cumsum(widths) - widths, widths)] = outs
        return Columns(keys, ix, steps, n_outs, acc_in, acc_out)


@dataclass
class SweepRun:
    """One run folder of a sweep."""

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
    """Records of one or more sweep folders, with the run each record came from (``record_runs``)."""

    def __init__(self, records: list[dict[str, Any]] | None = None, record_runs: list[str] | None = None) -> None:
        self.record_runs: list[str] = record_runs or []
        self.runs: dict[str, SweepRun] = {}
        self.missing: dict[str, ArgsKey] = {}  # runs the sweep's list expects that have no results
        self.problems: list[Problem] = []
        self.sources: list[str] = []
        self._records = records
        self._files: list[tuple[bytes, list[int]]] = []  # per kept run: its file and the lines kept
        self._columns: Columns | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every kept record as a dict, in read order (parsed again on first use)."""
        if self._records is None:
            self._records = [loads(lines[i]) for data, kept in self._files for lines in [data.split(b"\n")] for i in kept]
        return self._records

    @property
    def columns(self) -> Columns:
        """The fields model selection reads, in record order."""
        if self._columns is None:
            self._columns = Columns.of(self.records)
        return self._columns

    def first_records(self) -> dict[str, dict[str, Any]]:
        """The first kept record of every run with records, by run id (parsed from its file: cheap)."""
        if self._records is not None:
            out: dict[str, dict[str, Any]] = {}
            for run, record in zip(self.record_runs, self._records):
                out.setdefault(run, record)
            return out
        out, position = {}, 0
        for data, kept in self._files:
            if kept:
                out[self.record_runs[position]] = loads(data.split(b"\n", kept[0] + 1)[kept[0]])
            position += len(kept)
        return out

    def __len__(self) -> int:
        """Number of kept records (what DomainBed prints as "Total records")."""
        return len(self.record_runs)

    def skipped_lines(self) -> int:
        """How many lines were not read as records (malformed, truncated, invalid)."""
        return sum(1 for p in self.problems if p.line is not None)

    def incomplete_runs(self) -> list[str]:
        """Run keys without a ``done`` file (DomainBed counts their records; we mark them)."""
        return sorted(k for k, r in self.runs.items() if not r.done and r.duplicate_of is None)

    def unfinished_runs(self) -> int:
        """Runs without ``done`` plus expected runs without results: 0 iff the sweep is known complete
        (as far as its list of expected runs, if it has one, says)."""
        return len(self.incomplete_runs()) + len(self.missing)

    def only(self, keep: Callable[[ArgsKey], bool]) -> Sweep:
        """The records, runs and expected runs whose (trial, dataset, algorithm, hparams seed, test envs)
        ``keep`` accepts (problems and sources kept whole)."""
        rows = [i for i, record in enumerate(self.records) if keep(args_key(record["args"]))]
        out = Sweep([self.records[i] for i in rows], [self.record_runs[i] for i in rows])
        kept_runs = set(out.record_runs)
        out.runs = {k: r for k, r in self.runs.items() if k in kept_runs}
        out.missing = {k: key for k, key in self.missing.items() if keep(key)}
        out.problems, out.sources = list(self.problems), list(self.sources)
        return out

    def only_trials(self, trials: set[int]) -> Sweep:
        """The records (and runs) of these trial seeds only: a study that adds trials in a second stage
        can still build its table from the first stage's trials while the new ones run."""
        return self.only(lambda key: key[0] in trials)


def _last_of_each_step(records: list[tuple[int, dict]], path: str, problems: list[Problem]) -> list[tuple[int, dict]]:
    """Keep the last record of each step (a relaunched run appends a fresh run to the same file)."""
    last = {record["step"]: i for i, (_, record) in enumerate(records)}
    if len(last) < len(records):
        problems.append(Problem("duplicate_step", path, f"{len(records) - len(last)} records repeat a step already "
                                "in this file (run relaunched?); the last record of each step is kept"))
    return records if len(last) == len(records) else [records[i] for i in sorted(last.values())]


def read_sweep(input_dirs: list[str | os.PathLike] | str | os.PathLike, *, keep_duplicates: bool = False,
               order: str = "sorted", progress: bool = True) -> Sweep:
    """Read every ``<dir>/*/results.jsonl`` of the given sweep folders.

    ``keep_duplicates=True`` keeps repeated steps and copied runs as DomainBed does (they change its
    numbers); the default keeps one copy and reports the rest. ``order="listdir"`` visits run folders
    in ``os.listdir`` order as DomainBed does; the default sorted order makes outputs reproducible.
    """
    dirs = [input_dirs] if isinstance(input_dirs, (str, os.PathLike)) else list(input_dirs)
    sweep, kept, identities, rows = Sweep(), {}, {}, _Rows()
    for root in map(Path, dirs):
        if not root.is_dir():
            raise LdrError(f"sweep folder {root} does not exist or is not a directory")
        sweep.sources.append(str(root))
        names = os.listdir(root) if order == "listdir" else sorted(os.listdir(root))
        for name in tqdm(names, desc=f"reading {root.name}", unit="run", leave=False, disable=not progress):
            folder = f"{root}{os.sep}{name}"
            found = read_run_file(folder, sweep.problems)
            if found is None:
                continue
            data, records = found
            run = SweepRun(name if len(dirs) == 1 else f"{root}/{name}", folder, os.path.exists(f"{folder}{os.sep}done"),
                           truncated=bool(data) and not data.endswith(b"\n"))
            identity = None
            if not keep_duplicates and records:  # arguments as sorted JSON, output_dir aside (a copy keeps its own)
                records = _last_of_each_step(records, f"{folder}{os.sep}results.jsonl", sweep.problems)
                args = {k: v for k, v in records[0][1]["args"].items() if k != "output_dir"}
                identity = orjson.dumps(args, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
            first = identities.get(identity)
            if first is not None and not (run.done and not sweep.runs[first].done):
                run.duplicate_of = first  # a copy of an earlier run: named, its records ignored
                msg = f"same arguments as run {first}; its {len(records)} records are ignored"
                sweep.problems.append(Problem("duplicate_run", folder, msg))
                sweep.runs[run.run_id] = run
                continue
            if first is not None:  # the earlier copy is unfinished, this one has `done`: it replaces it
                earlier = sweep.runs[first]
                earlier.duplicate_of, earlier.n_records = run.run_id, 0
                msg = f"same arguments as run {run.run_id} (which has `done`); its records are ignored"
                sweep.problems.append(Problem("duplicate_run", earlier.folder, msg))
                del kept[first]
            if identity is not None:
                identities[identity] = run.run_id
            run.n_records = len(records)
            sweep.runs[run.run_id] = run
            kept[run.run_id] = (data, [i for i, _ in records], len(rows.steps))
            rows.add([record for _, record in records])  # the dicts are dropped here, the columns kept
        for name, args in read_expected(root, sweep.problems).items():
            run_id = name if len(dirs) == 1 else f"{root}/{name}"
            if run_id not in sweep.runs:
                sweep.missing[run_id] = args_key(args)
                sweep.problems.append(Problem("missing_run", f"{root}{os.sep}{name}", "expected by the sweep "
                                              f"({args['algorithm']} {args['dataset']} test envs {args['test_envs']} "
                                              f"hparams seed {args['hparams_seed']} trial {args['trial_seed']}) but "
                                              "has no results: not started yet, or lost"))
    keep = np.zeros(len(rows.steps), dtype=bool)
    for run_id, (data, lines, start) in kept.items():  # in read order; runs replaced by a copy left out
        sweep._files.append((data, lines))
        sweep.record_runs += [run_id] * len(lines)
        keep[start : start + len(lines)] = True
    sweep._columns = rows.columns(None if keep.all() else keep)
    return sweep


def check_run_folders(root: str | os.PathLike) -> tuple[int, list[Problem]]:
    """(finished runs, problems) of every folder below ``root`` that looks like a DomainBed run (its
    files, or a sweep's md5 name): a run needs ``done``, and every line of its results.jsonl is read."""
    root, n_done, problems = Path(root), 0, []
    for directory in sorted([root, *(p for p in root.rglob("*") if p.is_dir())]):
        if ".locks" in directory.relative_to(root).parts:
            continue
        read_run_file(directory, problems)
        if (directory / "done").exists():
            n_done += 1
        elif any((directory / f).exists() for f in RUN_FILES) or _MD5_DIR.match(directory.name):
            hint = (" (see its err.txt)" if (directory / "err.txt").exists()
                    else " (empty: the job never started)" if not any(directory.iterdir()) else "")
            problems.append(Problem("incomplete_run", str(directory), "DomainBed run without 'done'" + hint))
        for name, args in read_expected(directory, problems).items():
            if not (directory / name).exists():
                problems.append(Problem("missing_run", str(directory / name), "expected by the sweep "
                                        f"({args['algorithm']} {args['dataset']} test envs {args['test_envs']}) "
                                        "but has no folder: not started yet, or lost"))
    return n_done, problems
