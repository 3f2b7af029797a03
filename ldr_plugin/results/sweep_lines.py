"""Line-by-line reading of one DomainBed ``results.jsonl``: every bad line named, the rest kept.

This is the sweep reader's careful path (the fast path is :mod:`ldr_plugin.results.sweep_fast`): a
malformed or truncated JSON line is named by file and line number and skipped, a record missing a
field DomainBed's model selection needs is skipped with the field named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

try:  # orjson parses 3-5x faster; the stdlib parser is the fallback (and reads NaN, which orjson refuses)
    import orjson

    def loads(raw: bytes) -> Any:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return json.loads(raw)

    def dumps_sorted(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
except ModuleNotFoundError:  # pragma: no cover - exercised where orjson is absent
    def loads(raw: bytes) -> Any:
        return json.loads(raw)

    def dumps_sorted(obj: Any) -> bytes:
        return json.dumps(obj, sort_keys=True, default=str).encode()

SUPPORTED_SWEEP_SCHEMAS = (None, 1)
_NUMBER_TYPES = (float, int)  # DomainBed's own records carry no schema_version
_ARGS_FIELDS = {"algorithm": str, "dataset": str, "trial_seed": int, "hparams_seed": int, "test_envs": list}


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


def check_args(args: Any) -> str | None:
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
        wrong = check_args(args)
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


def _parse_file_whole(data: bytes) -> list[Any] | None:
    """All lines of a well-formed file in one parse; None if any line is not JSON."""
    if not data.endswith(b"\n") or b"\n\n" in data:
        return None
    try:
        return loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
    except ValueError:
        return None


def _parse_lines(path: str, data: bytes, truncated: bool, problems: list[Problem]) -> list[tuple[int, Any]]:
    """Line-by-line parse naming every bad line (file and line number)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    parsed = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            parsed.append((number, loads(raw)))
        except ValueError as exc:  # JSONDecodeError and orjson's error are ValueErrors
            last = number == len(lines) and truncated
            what = "truncated last line (file does not end with a newline)" if last else "not JSON"
            kind = "truncated_file" if last else "malformed_line"
            problems.append(Problem(kind, path, number, f"{what}: {exc}; line skipped"))
    return parsed


def read_lines(path: str, data: bytes, problems: list[Problem]) -> list[dict[str, Any]]:
    """Parse every line of one results.jsonl; bad lines become problems. Returns the valid records."""
    truncated = bool(data) and not data.endswith(b"\n")
    whole = _parse_file_whole(data)
    numbered = list(enumerate(whole, start=1)) if whole is not None else _parse_lines(path, data, truncated, problems)
    records: list[dict[str, Any]] = []
    good_args: list = []
    for number, record in numbered:
        wrong = _check_record(record, good_args)
        if wrong is not None:
            kind = "schema_version" if wrong.startswith("schema_version") else "bad_record"
            problems.append(Problem(kind, path, number, f"{wrong}; line skipped"))
            continue
        records.append(record)
    return records


