"""A sweep's list of expected runs: what lets a reader tell a finished grid from a partial one.

A run not yet started leaves no folder, so a sweep folder alone cannot say that a hyperparameter
grid or a trial is still missing, and model selection over it quietly picks among the runs that
exist. Every ``ldr train --sweep`` therefore writes, before it trains anything, the arguments of
each job it will run to ``<sweep>/expected_runs-<digest>.json`` (one file per distinct job list, so
several sweeps into one folder add up and re-running one rewrites nothing). The reader
(:func:`ldr_plugin.domainbed.runs.read_sweep`) reports every expected run without results as a
``missing_run`` problem and flags the cells it would have changed. The lists are files, not
folders, so DomainBed's ``collect_results`` and scripts that walk a sweep's run folders pass them
by. Sweeps run by DomainBed's own ``sweep.py`` have no such list; for them a partial grid stays
invisible, as in DomainBed.

>>> import tempfile; d = tempfile.mkdtemp()
>>> args = {"dataset": "D", "algorithm": "ERM", "test_envs": [0], "hparams_seed": 0, "trial_seed": 0}
>>> path = write_expected(d, [args]); sorted(read_expected(d, []).values()) == [args]
True
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ldr_plugin.files import UnreadableFile, display, read_bytes
from ldr_plugin.results.problems import Problem

PREFIX = "expected_runs-"
SCHEMA_VERSION = 1
_FIELDS = {"dataset": str, "algorithm": str, "test_envs": list, "hparams_seed": int, "trial_seed": int}


def run_folder_name(train_args: dict[str, Any]) -> str:
    """DomainBed's job folder name: the md5 of the JSON of the job's arguments (sorted keys)."""
    return hashlib.md5(json.dumps(train_args, sort_keys=True).encode("utf-8")).hexdigest()


def write_expected(sweep_dir: str | os.PathLike, args_list: list[dict[str, Any]]) -> Path:
    """Record ``args_list`` as runs expected in ``sweep_dir`` (atomic; an identical list is kept as is)."""
    runs = {run_folder_name(args): args for args in args_list}
    digest = hashlib.md5("\n".join(sorted(runs)).encode("ascii")).hexdigest()
    path = Path(sweep_dir) / f"{PREFIX}{digest}.json"
    if not path.exists():
        from ldr_plugin.results.io import atomic_write_text  # (the writer only: readers stay light to import)

        text = json.dumps({"schema_version": SCHEMA_VERSION, "runs": runs}, sort_keys=True, indent=1)
        atomic_write_text(path, text + "\n")
    return path


def expected_files(sweep_dir: str | os.PathLike) -> list[Path]:
    """The lists of expected runs in ``sweep_dir`` (none for a sweep not run by ``ldr train --sweep``)."""
    return sorted(Path(sweep_dir).glob(f"{PREFIX}*.json"))


def read_expected(sweep_dir: str | os.PathLike, problems: list[Problem]) -> dict[str, dict[str, Any]]:
    """Run folder name -> training arguments of every run the sweeps into ``sweep_dir`` expected.

    A list that cannot be read is a problem (kind ``bad_manifest``) naming the file; its runs are
    then not checked.
    """
    expected: dict[str, dict[str, Any]] = {}
    for path in expected_files(sweep_dir):
        try:
            content = json.loads(read_bytes(path, what="list of expected runs"))
            runs = content["runs"]
            if content.get("schema_version") != SCHEMA_VERSION or not isinstance(runs, dict):
                raise ValueError(f"expected schema_version {SCHEMA_VERSION} and an object 'runs'")
            for name, args in runs.items():
                if not isinstance(args, dict) or run_folder_name(args) != name:
                    raise ValueError(f"run {name!r}: its arguments do not hash to its folder name")
                for field, typ in _FIELDS.items():
                    if not isinstance(args.get(field), typ):
                        raise TypeError(f"run {name!r}: field {field!r} should be {typ.__name__}")
        except (UnreadableFile, ValueError, KeyError, TypeError) as exc:
            problems.append(Problem("bad_manifest", display(path), f"not a list of expected runs ({exc}); "
                                    "the sweep's completeness is not checked against it"))
            continue
        expected.update(runs)
    return expected
