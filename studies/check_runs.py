"""Check the finished runs a study keeps in the repository (``studies/keep_runs.sh``) before they are committed.

A kept run is a record people will cite; a folder copied from the wrong sweep, cut short, or holding
another run's records would be read as if it were right. Every run folder of KEPT_DIR is checked
against the sweep's own list of the runs it expects (``expected_runs-*.json``, written by
``ldr train --sweep`` before it trains; kept beside the runs):

- the folder is listed, and its name is DomainBed's name of the listed arguments (their md5);
- every record's ``args`` agree with the listed arguments, and its ``output_dir`` ends in the folder's name;
- ``done`` is there, no checkpoint (``*.pkl``) is kept, the steps rise strictly and the last is ``steps - 1``;
- with ``--against SWEEP_DIR``: every kept file is byte for byte the sweep's.

Prints how many runs were checked, each bad one and why, and the runs kept per dataset, algorithm
and trial against the number listed; exits 1 when a run is bad.

    python studies/check_runs.py leaderboards/dg_search_5001/runs --against WORK/sweep
"""

from __future__ import annotations

import argparse
import collections
import filecmp
import itertools
import json
import sys
from pathlib import Path

from ldr_plugin.domainbed.manifest import PREFIX, run_folder_name


def expected_runs(kept: Path) -> dict[str, dict]:
    """{folder name: listed arguments} over every list of expected runs in ``kept``."""
    runs: dict[str, dict] = {}
    for path in sorted(kept.glob(f"{PREFIX}*.json")):
        try:
            runs.update(json.loads(path.read_text())["runs"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise SystemExit(
                f"check_runs: {path} is not a list of expected runs ({error!r}); expected the JSON "
                "object {'schema_version': 1, 'runs': {folder name: arguments}} ldr train --sweep writes"
            )
    return runs


def problems(run: Path, listed: dict | None, against: Path | None) -> list[str]:
    """What is wrong with the kept run folder ``run`` (empty: nothing)."""
    if listed is None:
        return ["not in the kept lists of expected runs"]
    found = []
    if run_folder_name(listed) != run.name:
        found.append(f"the listed arguments' md5 is {run_folder_name(listed)}, not the folder's name")
    files = sorted(p.name for p in run.iterdir())
    found += [f"holds a checkpoint {name}" for name in files if name.endswith(".pkl")]
    if "done" not in files:
        found.append("no 'done' file: the run did not finish")
    try:
        records = [
            json.loads(line) for line in (run / "results.jsonl").read_text().splitlines() if line.strip()
        ]
    except (OSError, ValueError) as error:
        return found + [f"results.jsonl unreadable: {error}"]
    if not records:
        return found + ["results.jsonl holds no record"]
    steps = [record.get("step") for record in records]
    if any(not isinstance(s, int) for s in steps) or any(b <= a for a, b in itertools.pairwise(steps)):
        found.append(f"steps do not rise strictly: {steps}")
    elif isinstance(listed.get("steps"), int) and steps[-1] != listed["steps"] - 1:
        found.append(f"last step {steps[-1]}, expected {listed['steps'] - 1}")
    for index, record in enumerate(records):
        args = record.get("args", {})
        wrong = [key for key, value in listed.items() if args.get(key) != value]
        if wrong:
            found.append(f"record {index}: args {', '.join(wrong)} differ from the listed ones")
            break
        if Path(str(args.get("output_dir", ""))).name != run.name:
            found.append(f"record {index}: output_dir {args.get('output_dir')!r} is another folder")
            break
    if against is not None:
        for name in files:
            other = against / run.name / name
            if not other.is_file() or not filecmp.cmp(run / name, other, shallow=False):
                found.append(f"{name} is not the same as {other}")
    return found


def check(kept: Path, against: Path | None = None) -> tuple[int, list[str], list[str]]:
    """(number of runs checked, one line per bad run, one line of counts per dataset/algorithm/trial)."""
    expected = expected_runs(kept)
    bad, kept_counts, listed_counts = [], collections.Counter(), collections.Counter()
    for args in expected.values():
        listed_counts[(args["dataset"], args["algorithm"], args["trial_seed"])] += 1
    runs = sorted(p for p in kept.iterdir() if p.is_dir() and not p.name.startswith("."))
    for run in runs:
        listed = expected.get(run.name)
        bad += [f"{run.name}: {problem}" for problem in problems(run, listed, against)]
        if listed is not None:
            kept_counts[(listed["dataset"], listed["algorithm"], listed["trial_seed"])] += 1
    counts = [
        f"{d} {a} trial {t}: {kept_counts[(d, a, t)]} of {n}"
        for (d, a, t), n in sorted(listed_counts.items())
    ]
    return len(runs), bad, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kept", type=Path, help="the folder of kept runs (with its expected_runs-*.json)")
    parser.add_argument("--against", type=Path, help="the sweep folder the runs were copied from")
    args = parser.parse_args(argv)
    if not args.kept.is_dir():
        parser.error(f"{args.kept} is not a folder")
    if not list(args.kept.glob(f"{PREFIX}*.json")):
        parser.error(f"{args.kept} holds no {PREFIX}*.json: nothing says which runs belong there")
    n, bad, counts = check(args.kept, args.against)
    print(f"{n} runs, {len({line.split(':')[0] for line in bad})} bad")
    for line in bad:
        print("  BAD", line)
    for line in counts:
        print("  ", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
