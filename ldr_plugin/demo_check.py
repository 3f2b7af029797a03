"""Check a demo output folder: every expected file exists and parses (CI's smoke test of ``ldr demo``).

The sweep and the scores are checked as ``ldr results check`` checks them.

``python -m ldr_plugin.demo_check OUT`` exits 0 when the folder is sound, 1 with the problems listed.
"""

from __future__ import annotations

import csv
import json
import sys
from html.parser import HTMLParser
from pathlib import Path

from ldr_plugin.check import check_results
from ldr_plugin.errors import LdrError


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1


def check_demo_output(out: str | Path) -> list[str]:
    """Problems found in a demo folder (empty list = sound)."""
    out = Path(out)
    problems: list[str] = []
    try:
        manifest = json.loads((out / "demo.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{out / 'demo.json'}: {exc}"]
    sweep, board = Path(manifest["sweep_dir"]), Path(manifest["leaderboard_dir"])
    for folder in (sweep, Path(manifest["scores_dir"])):  # the one check of records and run folders
        try:
            report = check_results(folder)
        except LdrError as exc:
            problems.append(str(exc))
            continue
        problems += [f"{p.kind}: {p}" for p in report.problems]
        if folder == sweep and not report.n_runs_done:
            problems.append(f"{sweep}: no finished runs")
        if folder != sweep and report.n_valid < manifest["n_scored"]:
            problems.append(f"{folder}: {report.n_valid} valid records for {manifest['n_scored']} scored cells")
    tags = _Tags()
    try:
        tags.feed((board / "index.html").read_text())
    except OSError as exc:
        problems.append(f"{board / 'index.html'}: {exc}")
    if tags.counts.get("table", 0) == 0 or tags.counts.get("img", 0) == 0:
        problems.append(f"{board / 'index.html'}: expected tables and plot images, found {tags.counts}")
    for path in sorted(board.glob("*.csv")):
        with path.open(newline="") as handle:
            if len(list(csv.reader(handle))) < 2:
                problems.append(f"{path}: no data rows")
    if not list(board.glob("*.md")):
        problems.append(f"{board}: no Markdown tables")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ldr_plugin.demo_check OUT_DIR", file=sys.stderr)
        return 2
    problems = check_demo_output(args[0])
    for problem in problems:
        print(f"demo_check: {problem}", file=sys.stderr)
    print(f"demo_check: {args[0]}: {'OK' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
