"""Check the finished runs a study keeps in the repository (``studies/keep_runs.sh``) before they are committed.

A kept run is a record people will cite; a folder copied from the wrong sweep, cut short, or holding
another run's records would be read as if it were right. Every run folder of KEPT_DIR is checked
against the sweep's own list of the runs it expects (``expected_runs-*.json``, written by
``ldr train --sweep`` before it trains; kept beside the runs):

- the lists themselves, as the leaderboard's reader reads them (``read_expected``: schema, every name the md5
  of its arguments); a list that cannot be read stops the check (exit 1);
- the folder is listed (a hidden folder, such as a copy ``keep_runs.sh`` left cut short, is not);
- its results.jsonl is read by the leaderboard's reader (``read_run_file``): a line it would skip is named;
- every record's ``args`` agree with the listed arguments, and its ``output_dir`` ends in the folder's name;
- ``done`` is there, no checkpoint (``*.pkl``) is kept, the steps are 0, f, 2f, ... (one record every
  checkpoint_freq steps, none lost) and the last is ``steps - 1`` (when the list gives ``steps``);
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
import sys
from pathlib import Path

from ldr_plugin.domainbed.manifest import PREFIX, read_expected
from ldr_plugin.domainbed.runs import read_run_file
from ldr_plugin.results.problems import Problem


def problems(run: Path, listed: dict | None, against: Path | None) -> list[str]:
    """What is wrong with the kept run folder ``run`` (empty: nothing)."""
    if listed is None:
        return ["not in the kept lists of expected runs"]
    files = sorted(p.name for p in run.iterdir())
    found = [f"holds a checkpoint {name}" for name in files if name.endswith(".pkl")]
    if "done" not in files:
        found.append("no 'done' file: the run did not finish")
    file_problems: list[Problem] = []
    read = read_run_file(run, file_problems)  # the leaderboard's reader: bad lines are named, not read
    found += [f"results.jsonl line {p.line}: {p.message}" if p.line else p.message for p in file_problems]
    records = [record for _, record in read[1]] if read else []
    if not records:
        return [*found, "results.jsonl holds no valid record"]
    steps = [record["step"] for record in records]
    gaps = [b - a for a, b in itertools.pairwise(steps)]
    if any(gap <= 0 for gap in gaps):
        found.append(f"steps do not rise strictly: {steps}")
    else:
        # a record every checkpoint_freq steps from step 0, and one at the last step: a record lost
        # at the start or in the middle shows here (the last one lost shows below)
        if steps[0] != 0 or any(gap != gaps[0] for gap in gaps[1:-1]) or (gaps and gaps[-1] > gaps[0]):
            found.append(f"steps are not 0, f, 2f, ... and the last (a record missing?): {steps}")
        if isinstance(listed.get("steps"), int) and steps[-1] != listed["steps"] - 1:
            found.append(f"last step {steps[-1]}, expected {listed['steps'] - 1}")
    for index, record in enumerate(records):
        args = record["args"]
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


def check(
    kept: Path, expected: dict[str, dict], against: Path | None = None
) -> tuple[int, dict[str, list[str]], list[str]]:
    """(number of run folders checked, {bad folder: its problems}, one line of counts per dataset/algorithm/trial).
    Every folder is checked, hidden ones too (a copy ``keep_runs.sh`` left cut short is not a listed run)."""
    bad, kept_counts, listed_counts = {}, collections.Counter(), collections.Counter()
    for args in expected.values():
        listed_counts[(args["dataset"], args["algorithm"], args["trial_seed"])] += 1
    runs = sorted(p for p in kept.iterdir() if p.is_dir())
    for run in runs:
        listed = expected.get(run.name)
        found = problems(run, listed, against)
        if found:
            bad[run.name] = found
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
    list_problems: list[Problem] = []
    expected = read_expected(args.kept, list_problems)  # the reader's own checks: schema, md5 names, fields
    if list_problems:
        for problem in list_problems:
            print(f"check_runs: {problem.path} is {problem.message}", file=sys.stderr)
        return 1
    n, bad, counts = check(args.kept, expected, args.against)
    print(f"{n} runs, {len(bad)} bad")
    for name, found in bad.items():
        for problem in found:
            print(f"  BAD {name}: {problem}")
    for line in counts:
        print("  ", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
