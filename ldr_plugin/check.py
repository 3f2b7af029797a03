"""``ldr results check``: is a results folder written by many processes complete and sound?

Record files are checked by :func:`ldr_plugin.results.check.check_records` (the one record
validator) and DomainBed run folders by :func:`ldr_plugin.domainbed.runs.check_run_folders` (the
one run-folder reader): a run without ``done`` is ``incomplete_run``, a bad line of its
results.jsonl is named as the sweep reader names it.

>>> import tempfile
>>> check_results(tempfile.mkdtemp()).ok
True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ldr_plugin.domainbed.runs import check_run_folders
from ldr_plugin.errors import LdrError
from ldr_plugin.results.check import CheckReport, check_records, load_cells


def check_results(directory: str | os.PathLike, expect: list[dict[str, Any]] | None = None) -> CheckReport:
    """Check every record file and DomainBed run folder below ``directory``."""
    report = check_records(directory, expect)
    report.n_runs_done, run_problems = check_run_folders(directory)
    report.problems += run_problems
    return report


def load_expectation(spec: str | os.PathLike) -> list[dict[str, Any]]:
    """Expected cells from a selection ``.toml`` (the cells ``ldr score`` would write for it), or a
    ``.json`` / ``.jsonl`` / text list (:func:`~ldr_plugin.results.check.load_cells`)."""
    path = Path(spec)
    if not path.is_file():
        raise LdrError(f"expectation '{spec}' is not a file (give a selection .toml, or a .json, .jsonl or .txt list)")
    if path.suffix != ".toml":
        return load_cells(path)
    from ldr_plugin.scoring.run import selection_cells  # scoring imports torch: only a selection needs it

    return selection_cells(path)
