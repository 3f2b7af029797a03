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

SUPPORTED_SWEEP_SCHEMAS = (None, 1)  # DomainBed's own records carry no schema_version
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


def _check_record(record: Any) -> str | None:
    """Return what is wrong with a DomainBed record for model selection, or None."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    version = record.get("schema_version")
    if version not in SUPPORTED_SWEEP_SCHEMAS:
        return f"schema_version {version!r} is not supported (this reader knows {SUPPORTED_SWEEP_SCHEMAS[1:]})"
    args = record.get("args")
    if not isinstance(args, dict):
        return "missing field 'args' (expected an object)"
    for name, typ in _ARGS_FIELDS.items():
        value = args.get(name)
        if not isinstance(value, typ) or isinstance(value, bool):
            return f"field 'args.{name}' should be {typ.__name__}, got {value!r}"
    envs = args["test_envs"]
    if not envs or not all(isinstance(e, int) and not isinstance(e, bool) for e in envs):
        return f"field 'args.test_envs' should be a non-empty list of ints, got {envs!r}"
    if not isinstance(record.get("step"), int):
        return f"field 'step' should be int, got {record.get('step')!r}"
    for env in envs:
        for split in ("in", "out"):
            key = f"env{env}_{split}_acc"
            if not isinstance(record.get(key), (int, float)):
                return f"field '{key}' (accuracy of a test env) should be a number, got {record.get(key)!r}"
    return None


def _read_lines(path: Path, sweep: Sweep) -> tuple[list[dict[str, Any]], bool]:
    """Parse every line of one results.jsonl; bad lines become problems. Returns (records, truncated)."""
    data = path.read_bytes()
    truncated = bool(data) and not data.endswith(b"\n")
    records: list[dict[str, Any]] = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        last = number == len(lines)
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            kind = "truncated_file" if last and truncated else "malformed_line"
            what = "truncated last line (file does not end with a newline)" if kind == "truncated_file" else "not JSON"
            sweep.problems.append(Problem(kind, str(path), number, f"{what}: {exc}; line skipped"))
            continue
        wrong = _check_record(record)
        if wrong is not None:
            kind = "schema_version" if wrong.startswith("schema_version") else "bad_record"
            sweep.problems.append(Problem(kind, str(path), number, f"{wrong}; line skipped"))
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


def _run_identity(record: dict[str, Any]) -> str:
    args = {k: v for k, v in record["args"].items() if k != "output_dir"}
    return json.dumps(args, sort_keys=True, default=str)


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
    identities: dict[str, str] = {}
    for root in map(Path, input_dirs):
        if not root.is_dir():
            raise LdrError(f"sweep folder {root} does not exist or is not a directory")
        sweep.sources.append(str(root))
        names = _list_run_dirs(root, order)
        for name in tqdm(names, desc=f"reading {root.name}", unit="run", disable=not progress, leave=False):
            results = root / name / "results.jsonl"
            if not results.is_file():
                continue
            key = name if len(input_dirs) == 1 else f"{root}/{name}"
            run = SweepRun(run_id=key, path=root / name, done=(root / name / "done").exists())
            records, run.truncated = _read_lines(results, sweep)
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
