"""Is a folder of record files complete and sound? (``ldr results check`` adds DomainBed run folders.)

Every record file is read with the one validator; problems are reported by kind, each naming its file:
``invalid`` / ``schema_version`` (a record that parses but breaks the schema; the message names the
field), ``partial`` (a leftover ``.tmp-*`` file of a killed writer, or a record that is not whole
JSON), ``duplicate`` (two files holding the same cell), ``missing`` (an expected cell without a
valid record, only with an expectation), ``old_schema`` (a valid record of schema 1, written before
cell identity: it still reads, but its dataset name does not say which data it was computed on, so
it should be re-scored; it counts as valid and as a problem, so the check exits 1).

>>> import tempfile
>>> check_records(tempfile.mkdtemp()).ok
True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldr_plugin.errors import LdrError
from ldr_plugin.files import display, read_text
from ldr_plugin.results.io import scan_records, temp_file_problems
from ldr_plugin.results.problems import Problem
from ldr_plugin.results.record import KEY_FIELDS, Record

PROBLEM_KINDS = ("invalid", "schema_version", "old_schema", "partial", "duplicate", "missing", "incomplete_run")


def old_schema_problem(path: Path, record: Record) -> Problem:
    """The ``old_schema`` problem of a schema-1 record: what is wrong with it and what to do."""
    if record.features_from_cache is not None:  # written by `ldr score`
        todo = ("re-score the cell with this ldr-plugin (`ldr score` writes the new record beside it, named by "
                "its data's identity), then delete this file")
    else:
        todo = ("re-run the command that wrote it (provenance.command) with this ldr-plugin; it rewrites this "
                "file as schema 2")
    return Problem("old_schema", display(path),
                   f"schema 1 (written before cell identity): dataset '{record.dataset}' is a name only, not "
                   f"which data it was computed on, and `ldr score` does not reuse it; {todo}")


@dataclass
class CheckReport:
    """What a check found: counts of valid files and every problem."""

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
        lines = [f"{p.kind:<14} {p}" for p in self.problems]
        kinds = list(PROBLEM_KINDS) + sorted({p.kind for p in self.problems} - set(PROBLEM_KINDS))
        counts = ", ".join(f"{self.count(k)} {k}" for k in kinds)
        lines.append(
            f"{self.directory}: {self.n_valid} valid record(s), {self.n_runs_done} finished DomainBed run(s); "
            f"{counts}" + (" -- OK" if self.ok else " -- PROBLEMS")
        )
        return "\n".join(lines)


def check_records(directory: str | os.PathLike, expect: list[dict[str, Any]] | None = None) -> CheckReport:
    """Check every record file below ``directory`` (see the module docstring)."""
    root = Path(directory)
    if not root.is_dir():
        raise LdrError(f"{root}: not a directory")
    valid, problems = scan_records([root])
    report = CheckReport(directory=root, n_valid=len(valid), problems=problems + temp_file_problems(root))
    report.problems += [old_schema_problem(path, record) for path, record in valid if record.schema_version == 1]
    for cell in expect or []:
        if not any(all(str(getattr(record, k)) == str(v) for k, v in cell.items()) for _, record in valid):
            where = ", ".join(f"{k}={v}" for k, v in cell.items())
            report.problems.append(Problem("missing", where, "no valid record for this expected cell"))
    return report


def load_cells(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Expected cells from a ``.json`` (a list of objects), ``.jsonl`` or text file.

    Each cell gives some of the key fields (``model_id``, ``dataset``, ``split``, ``layer``,
    ``metric_family``, ``seed``); a text line lists them in that order, separated by whitespace
    (``#`` starts a comment). A cell is present when a valid record matches every field it gives.
    """
    path = Path(path)
    text = read_text(path, what="list of expected cells")
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
    except (RecursionError, ValueError) as exc:  # nested too deeply, an integer of too many digits
        raise LdrError(f"{path}: not valid JSON ({str(exc)[:120] or 'nested too deeply'})") from exc
