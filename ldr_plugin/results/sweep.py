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

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ldr_plugin.errors import LdrError

try:  # orjson parses 3-5x faster; the stdlib parser is the fallback (and reads NaN, which orjson refuses)
    import orjson

    def _loads(raw: bytes) -> Any:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return json.loads(raw)

    def _dumps_sorted(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
except ModuleNotFoundError:  # pragma: no cover - exercised where orjson is absent
    def _loads(raw: bytes) -> Any:
        return json.loads(raw)

    def _dumps_sorted(obj: Any) -> bytes:
        return json.dumps(obj, sort_keys=True, default=str).encode()

SUPPORTED_SWEEP_SCHEMAS = (None, 1)
_NUMBER_TYPES = (float, int)  # DomainBed's own records carry no schema_version
_ARGS_FIELDS = {"algorithm": str, "dataset": str, "trial_seed": int, "hparams_seed": int, "test_envs": list}


@dataclass
class SweepRun:
    """One run folder of a sweep."""

    run_id: str
    path: Path
    done: bool
    n_records: int = 0
    truncated: bool = False
    duplicate_of: str | None = None


@dataclass
class Problem:
    """Something in the input that was skipped or needs a reader's attention."""

    kind: str  # malformed_line, truncated_file, bad_record, schema_version, duplicate_step, duplicate_run
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass
class Sweep:
    """Records of one or more sweep folders, with the run each record came from."""

    records: list[dict[str, Any]] = field(default_factory=list)
    record_runs: list[str] = field(default_factory=list)  # run key of records[i]
    runs: dict[str, SweepRun] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def skipped_lines(self) -> int:
        """How many lines were not read as records (malformed, truncated, invalid, duplicate)."""
        return sum(1 for p in self.problems if p.line is not None)

    def incomplete_runs(self) -> list[str]:
        """Run keys without a ``done`` file (DomainBed counts their records; we mark them)."""
        return sorted(k for k, r in self.runs.items() if not r.done and r.duplicate_of is None)


def _check_args(args: Any) -> str | None:
    """What is wrong with a record's ``args`` for model selection, or None."""
    if not isinstance(args, dict):
        return "missing field 'args' (expected an object)"
    for name, typ in _ARGS_FIELDS.items():
        value = args.get(name)
        if not isinstance(value, typ) or isinstance(value, bool):
            return f"field 'args.{name}' should be {typ.__name__}, got {value!r}"
    envs = args["test_envs"]
    if not envs or not all(isinstance(e, int) and not isinstance(e, bool) for e in envs):
        return f"field 'args.test_envs' should be a non-empty list of ints, got {envs!r}"
    return None


def _check_record(record: Any, good_args: list) -> str | None:
    """What is wrong with a DomainBed record for model selection, or None.

    ``good_args`` holds the last ``args`` found valid: the records of a run repeat the same args,
    so they are checked once per run, not once per line.
    """
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    version = record.get("schema_version")
    if version is not None and version not in SUPPORTED_SWEEP_SCHEMAS:
        return f"schema_version {version!r} is not supported (this reader knows {SUPPORTED_SWEEP_SCHEMAS[1:]})"
    args = record.get("args")
    if not good_args or (args is not good_args[0] and args != good_args[0]):
        wrong = _check_args(args)
        if wrong is not None:
            return wrong
        good_args[:] = [args, [f"env{e}_{split}_acc" for e in args["test_envs"] for split in ("in", "out")]]
    step = record.get("step")
    if type(step) is not int:
        return f"field 'step' should be int, got {step!r}"
    for key in good_args[1]:
        if type(record.get(key)) not in _NUMBER_TYPES:
            return f"field '{key}' (accuracy of a test env) should be a number, got {record.get(key)!r}"
    return None


def _args_prefix(first_line: bytes) -> tuple[bytes, Any] | None:
    """The text ``{"args": {...}`` that opens a DomainBed line, with its parsed value (or None).

    DomainBed writes ``json.dumps(record, sort_keys=True)``: ``args`` comes first and is identical on
    every line of a run. :func:`_parse_file_fast` checks the cut against a full parse of the first
    line, so a wrong cut can never change a result (it only loses the speed-up).
    """
    if not first_line.startswith(b'{"args": {'):
        return None
    cut = first_line.find(b', "env0_in_acc"')
    if cut < 0:
        return None
    try:
        head = _loads(first_line[:cut] + b"}")
    except ValueError:
        return None
    return (first_line[:cut], head["args"]) if isinstance(head, dict) and len(head) == 1 else None


def _parse_file_fast(data: bytes) -> list[Any] | None:
    """All lines of a well-formed file in one parse; None if any line is not JSON.

    Lines after the first that start with the run's ``args`` text (see :func:`_args_prefix`) are
    parsed without it and get the (equal) parsed ``args`` back, which halves the bytes to parse; a
    key repeated later in a line still wins, as in a full parse.
    """
    if not data.endswith(b"\n") or b"\n\n" in data:
        return None
    lines = data[:-1].split(b"\n")
    found = _args_prefix(lines[0])
    try:
        if found is None:
            return _loads(b"[" + b",".join(lines) + b"]")
        prefix, args = found
        cut = len(prefix) + 2  # also drop the ", " before the next key
        stripped = [False] + [line.startswith(prefix) for line in lines[1:]]
        body = [b"{" + line[cut:] if ok else line for line, ok in zip(lines, stripped)]
        records = _loads(b"[" + b",".join(body) + b"]")
    except ValueError:
        return None
    if not isinstance(records[0], dict) or records[0].get("args") != args:
        return _parse_file_fast_plain(lines)  # the cut was not the args object: parse everything
    args = records[0]["args"]
    for i, ok in enumerate(stripped):
        if ok and "args" not in records[i]:  # a later "args" key in the line wins, as in a full parse
            records[i]["args"] = args
    return records


def _parse_file_fast_plain(lines: list[bytes]) -> list[Any] | None:
    try:
        return _loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        return None


def _parse_lines(path: str, data: bytes, truncated: bool, sweep: Sweep) -> list[tuple[int, Any]]:
    """Line-by-line parse naming every bad line (file and line number)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    parsed = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            parsed.append((number, _loads(raw)))
        except ValueError as exc:  # JSONDecodeError and orjson's error are ValueErrors
            last = number == len(lines) and truncated
            what = "truncated last line (file does not end with a newline)" if last else "not JSON"
            kind = "truncated_file" if last else "malformed_line"
            sweep.problems.append(Problem(kind, path, number, f"{what}: {exc}; line skipped"))
    return parsed


def _read_lines(path: str, sweep: Sweep) -> tuple[list[dict[str, Any]], bool]:
    """Parse every line of one results.jsonl; bad lines become problems. Returns (records, truncated)."""
    with open(path, "rb") as handle:
        data = handle.read()
    truncated = bool(data) and not data.endswith(b"\n")
    fast = _parse_file_fast(data)
    numbered = list(enumerate(fast, start=1)) if fast is not None else _parse_lines(path, data, truncated, sweep)
    records: list[dict[str, Any]] = []
    good_args: list = []
    for number, record in numbered:
        wrong = _check_record(record, good_args)
        if wrong is not None:
            kind = "schema_version" if wrong.startswith("schema_version") else "bad_record"
            sweep.problems.append(Problem(kind, path, number, f"{wrong}; line skipped"))
            continue
        records.append(record)
    return records, truncated


def _dedupe_steps(records: list[dict[str, Any]], path: Path, sweep: Sweep) -> list[dict[str, Any]]:
    """Keep the last record of each step (a relaunched run appends a fresh run to the same file)."""
    last: dict[int, int] = {}
    for i, record in enumerate(records):
        last[record["step"]] = i
    if len(last) == len(records):
        return records
    kept = sorted(last.values())
    sweep.problems.append(
        Problem("duplicate_step", str(path), None,
                f"{len(records) - len(kept)} records repeat a step already in this file "
                "(run relaunched?); the last record of each step is kept")
    )
    return [records[i] for i in kept]


def _run_identity(record: dict[str, Any]) -> bytes:
    args = {k: v for k, v in record["args"].items() if k != "output_dir"}
    return _dumps_sorted(args)


def _list_run_dirs(root: Path, order: str) -> list[str]:
    names = os.listdir(root)
    return names if order == "listdir" else sorted(names)


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
    sweep = Sweep()
    identities: dict[bytes, str] = {}
    for root in map(Path, input_dirs):
        if not root.is_dir():
            raise LdrError(f"sweep folder {root} does not exist or is not a directory")
        sweep.sources.append(str(root))
        names = _list_run_dirs(root, order)
        base = str(root)
        for name in tqdm(names, desc=f"reading {root.name}", unit="run", disable=not progress, leave=False):
            results = os.path.join(base, name, "results.jsonl")
            try:
                records, truncated = _read_lines(results, sweep)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue  # not a run folder (DomainBed skips these too)
            key = name if len(input_dirs) == 1 else f"{root}/{name}"
            run = SweepRun(run_id=key, path=root / name, done=os.path.exists(os.path.join(base, name, "done")),
                           truncated=truncated)
            if not keep_duplicates:
                records = _dedupe_steps(records, results, sweep)
            if records and not keep_duplicates:
                identity = _run_identity(records[0])
                if identity in identities:
                    first = identities[identity]
                    prefer_new = run.done and not sweep.runs[first].done
                    _mark_duplicate_run(sweep, run, first, records, prefer_new)
                    if not prefer_new:
                        continue
                    identities[identity] = key
                else:
                    identities[identity] = key
            run.n_records = len(records)
            sweep.runs[key] = run
            sweep.records.extend(records)
            sweep.record_runs.extend([key] * len(records))
    return sweep


def _mark_duplicate_run(sweep: Sweep, run: SweepRun, first: str, records: list, prefer_new: bool) -> None:
    """Record a run folder whose arguments repeat an earlier one; keep the finished copy."""
    if prefer_new:  # the earlier copy is unfinished, this one has `done`: drop the earlier records
        keep = [i for i, k in enumerate(sweep.record_runs) if k != first]
        sweep.records = [sweep.records[i] for i in keep]
        sweep.record_runs = [sweep.record_runs[i] for i in keep]
        sweep.runs[first].duplicate_of = run.run_id
        sweep.runs[first].n_records = 0
        msg = f"same arguments as run {run.run_id} (which has `done`); its records are ignored"
        sweep.problems.append(Problem("duplicate_run", str(sweep.runs[first].path), None, msg))
    else:
        run.duplicate_of = first
        sweep.runs[run.run_id] = run
        msg = f"same arguments as run {first}; its {len(records)} records are ignored"
        sweep.problems.append(Problem("duplicate_run", str(run.path), None, msg))
