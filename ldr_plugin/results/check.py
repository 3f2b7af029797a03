"""``ldr results check``: is a results folder written by many processes complete and sound?

Every record file is read and validated; problems are reported by kind, each naming its file:

- ``invalid``: a record that parses but breaks the schema (the message names the field);
- ``partial``: a leftover ``.tmp-*`` file of a killed writer, or a record that is not whole JSON;
- ``duplicate``: two files holding the same cell (e.g. written by two versions with other names);
- ``missing``: an expected cell without a valid record (only with an expectation);
- ``incomplete_run``: a DomainBed run directory without its ``done`` file.

>>> import tempfile
>>> check_results(tempfile.mkdtemp()).ok
True
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldr_plugin.errors import LdrError
from ldr_plugin.results.atomic import TMP_PREFIX
from ldr_plugin.results.lock import LOCK_DIR
from ldr_plugin.results.record import KEY_FIELDS, RECORD_SUFFIX, cell_key, validate_record

PROBLEM_KINDS = ("invalid", "partial", "duplicate", "missing", "incomplete_run")
DOMAINBED_RUN_FILES = ("results.jsonl", "out.txt", "err.txt", "model.pkl")
_MD5_DIR = re.compile(r"^[0-9a-f]{32}$")  # sweep.py names each job's directory by an md5


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a results folder: its kind, the file or cell concerned, and why."""

    kind: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind:<14} {self.where}: {self.detail}"


@dataclass
class CheckReport:
    """What :func:`check_results` found: counts of valid files and every problem."""

    directory: Path
    n_valid: int = 0
    n_runs_done: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, kind: str) -> int:
        return sum(p.kind == kind for p in self.problems)

    def format(self) -> str:
        """A human summary: one line per problem, then the counts."""
        lines = [str(p) for p in self.problems]
        counts = ", ".join(f"{self.count(k)} {k}" for k in PROBLEM_KINDS)
        lines.append(
            f"{self.directory}: {self.n_valid} valid record(s), {self.n_runs_done} finished DomainBed run(s); "
            f"{counts}" + (" -- OK" if self.ok else " -- PROBLEMS")
        )
        return "\n".join(lines)


def _is_lock_path(path: Path, root: Path) -> bool:
    return LOCK_DIR in path.relative_to(root).parts


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(parsed JSON, None) or (None, why it is partial)."""
    try:
        text = path.read_text()
    except OSError as exc:
        return None, f"cannot read ({exc.strerror or exc})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"truncated or not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"


def _check_records(root: Path, report: CheckReport) -> list[dict[str, Any]]:
    """Validate every record file; return the valid records (with their path under ``_path``)."""
    valid: list[dict[str, Any]] = []
    by_key: dict[tuple, list[Path]] = defaultdict(list)
    for path in sorted(root.rglob("*" + RECORD_SUFFIX)):
        if path.name.startswith(".") or _is_lock_path(path, root):
            continue
        data, partial = _read_json(path)
        if partial:
            report.problems.append(Problem("partial", str(path), partial))
            continue
        try:
            validate_record(data, source=str(path))
        except LdrError as exc:
            report.problems.append(Problem("invalid", str(path), str(exc).removeprefix(f"{path}: ")))
            continue
        valid.append({**data, "_path": path})
        by_key[tuple(str(x) for x in cell_key(data))].append(path)
    for key, paths in sorted(by_key.items()):
        if len(paths) > 1:
            cell = ", ".join(f"{f}={v}" for f, v in zip(KEY_FIELDS, key))
            others = ", ".join(str(p) for p in paths[1:])
            report.problems.append(Problem("duplicate", str(paths[0]), f"same cell ({cell}) also in {others}"))
    report.n_valid = len(valid)
    return valid


def _check_temp_files(root: Path, report: CheckReport) -> None:
    for path in sorted(root.rglob(TMP_PREFIX + "*")):
        if path.is_file() and not _is_lock_path(path, root):
            report.problems.append(Problem("partial", str(path), "temporary file left by a writer that died"))


def _check_domainbed_runs(root: Path, report: CheckReport) -> None:
    """A directory that looks like a DomainBed run (its files, or a sweep's md5 name) needs ``done``."""
    directories = [root, *(p for p in root.rglob("*") if p.is_dir() and not _is_lock_path(p, root))]
    for directory in sorted(directories):
        if (directory / "done").exists():
            report.n_runs_done += 1
            continue
        if not (any((directory / f).exists() for f in DOMAINBED_RUN_FILES) or _MD5_DIR.match(directory.name)):
            continue
        if (directory / "err.txt").exists():
            hint = " (see its err.txt)"
        elif not any(directory.iterdir()):
            hint = " (empty: the job never started)"
        else:
            hint = ""
        report.problems.append(Problem("incomplete_run", str(directory), "DomainBed run without 'done'" + hint))


def _matches(record: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(str(record.get(f)) == str(v) for f, v in expected.items())


def _check_missing(valid: list[dict[str, Any]], expected: list[dict[str, Any]], report: CheckReport) -> None:
    for cell in expected:
        if not any(_matches(rec, cell) for rec in valid):
            where = ", ".join(f"{k}={v}" for k, v in cell.items())
            report.problems.append(Problem("missing", where, "no valid record for this expected cell"))


def check_results(directory: str | os.PathLike, expect: list[dict[str, Any]] | None = None) -> CheckReport:
    """Check every record file and DomainBed run below ``directory`` (see the module docstring)."""
    root = Path(directory)
    if not root.is_dir():
        raise LdrError(f"{root}: not a directory")
    report = CheckReport(directory=root)
    valid = _check_records(root, report)
    _check_temp_files(root, report)
    _check_domainbed_runs(root, report)
    if expect is not None:
        _check_missing(valid, expect, report)
    return report


def load_expectation(spec: str | os.PathLike) -> list[dict[str, Any]]:
    """Expected cells from a file: a selection ``.toml``, ``.json`` (a list of objects), ``.jsonl``, or text lines.

    Each cell gives some of the key fields (``model_id``, ``dataset``, ``split``, ``layer``,
    ``metric_family``, ``seed``); a text line lists them in that order, separated by whitespace
    (``#`` starts a comment). A cell is present when a valid record matches every field it gives.
    """
    path = Path(spec)
    if not path.is_file():
        raise LdrError(f"expectation '{spec}' is not a file (give a selection .toml, or a .json, .jsonl or .txt list)")
    if path.suffix == ".toml":
        return selection_cells(path)
    text = path.read_text()
    if path.suffix == ".json":
        cells = _json_or_error(text, path)
        cells = cells.get("cells") if isinstance(cells, dict) else cells
    elif path.suffix == ".jsonl":
        cells = [_json_or_error(line, path) for line in text.splitlines() if line.strip()]
    else:
        lines = (line.split("#", 1)[0].split() for line in text.splitlines())
        cells = [dict(zip(KEY_FIELDS, parts)) for parts in lines if parts]
    if not isinstance(cells, list):
        raise LdrError(f"{path}: expected a list of cells")
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or not cell or set(cell) - set(KEY_FIELDS):
            raise LdrError(f"{path}: cell {i} should be an object with some of the fields {', '.join(KEY_FIELDS)}")
    return cells


def _json_or_error(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LdrError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc


def selection_cells(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The cells a ``registry/selections/*.toml`` asks ``ldr score`` for: models x datasets (x layers).

    Split, seed and layers are expected only when the selection states them; ``run`` datasets (a
    DomainBed run's environments) are known only from the run and are not expected.
    """
    from ldr_plugin.scoring.cells import Cell
    from ldr_plugin.scoring.run import load_selection

    table = load_selection(path, data_root=os.environ.get("LDR_DATA_ROOT") or ".")  # names drop the root
    fixed = {k: table[k] for k in ("split", "seed") if k in table}
    cells = []
    for model_id in table["models"]:
        for dataset in (d for d in table["datasets"] if d != "run"):
            base = {"model_id": model_id, "dataset": Cell(model_id, dataset).dataset_name, **fixed}
            cells += [{**base, "layer": layer} for layer in table.get("layers") or []] or [base]
    return cells
