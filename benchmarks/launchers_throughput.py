"""Launchers: scoring cells/s inline vs submitit's local executor, and the launcher's overhead per job.

Cells are real ``score_cell`` calls (every registered metric, embedded digits, ``--n-per-class``
per class) on a tiny random linear model from a model source registered by entry point in a
throwaway distribution (as a third party would). The overhead per job is measured with jobs that
do nothing (one item per job), against DomainBed-style commands run by a plain ``subprocess`` loop.

    python benchmarks/launchers_throughput.py --cells 40 --workers 2 --jobs 8
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ldr_plugin.testing import tiny_distribution


def fake_distribution(root: Path) -> Path:
    """The tiny model source (``ldr_plugin.testing``) as an installed plugin; put on sys.path and PYTHONPATH."""
    tiny_distribution(root, width=32)
    sys.path.insert(0, str(root))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    return root


def time_cells(cells, launcher: str, out: Path, resources) -> tuple[float, int]:
    from ldr_plugin.launchers.launch import launch
    from ldr_plugin.scoring.run import cell_name, score_one

    fn = functools.partial(score_one, out_dir=str(out), score_kwargs={"device": "cpu", "cache_dir": None})
    start = time.perf_counter()
    summary = launch(cells, fn, launcher, resources, names=cell_name, progress=False)
    seconds = time.perf_counter() - start
    if not summary.ok:
        raise SystemExit(summary.format())
    return seconds, summary.n_jobs


def time_noop_jobs(n_jobs: int, folder: Path) -> float:
    from ldr_plugin.launchers.launch import launch
    from ldr_plugin.launchers.resources import Resources

    start = time.perf_counter()
    summary = launch(range(n_jobs), abs, "local", Resources(folder=str(folder), items_per_job=1), progress=False)
    assert summary.ok and summary.n_jobs == n_jobs
    return (time.perf_counter() - start) / n_jobs


def time_commands(n: int, folder: Path) -> tuple[float, float]:
    """Seconds per trivial ``python -c pass`` command: plain subprocess loop vs our submitit_local path."""
    from ldr_plugin.domainbed.launchers import launch_commands
    from ldr_plugin.launchers.resources import Resources

    commands = [f"python -c 'import sys; sys.exit({0})'"] * n
    start = time.perf_counter()
    for _ in commands:
        subprocess.run([sys.executable, "-c", "import sys; sys.exit(0)"], check=True)
    plain = (time.perf_counter() - start) / n
    start = time.perf_counter()
    launch_commands(commands, "local", Resources(folder=str(folder), items_per_job=1), progress=False)
    ours = (time.perf_counter() - start) / n
    return plain, ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-per-class", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=8, help="no-op jobs for the per-job overhead")
    args = parser.parse_args()

    from ldr_plugin.launchers.resources import Resources
    from ldr_plugin.scoring.cells import ScoreCell

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fake_distribution(tmp / "site")
        cells = [ScoreCell(f"tiny:net{i // 4}", "digits", seed=i % 4, n_per_class=args.n_per_class) for i in range(args.cells)]
        time_cells(cells[:1], "inline", tmp / "warmup", None)  # imports and first-call costs out of the timing
        seconds = {"inline": 0.0, "local": 0.0}
        n_jobs = 0
        for rep, launcher in enumerate(["inline", "local", "local", "inline"]):  # ABBA: load drift cancels
            resources = Resources(folder=str(tmp / f"logs{rep}"), local_workers=args.workers)
            spent, jobs = time_cells(cells, launcher, tmp / f"{launcher}{rep}", resources)
            seconds[launcher] += spent / 2
            n_jobs = max(n_jobs, jobs)
        inline_s, local_s = seconds["inline"], seconds["local"]
        records = sorted(p.name for p in (tmp / "inline0").glob("*.result.json"))
        assert records == sorted(p.name for p in (tmp / "local1").glob("*.result.json")), "inline and local differ"
        noop = time_noop_jobs(args.jobs, tmp / "noop")
        plain, ours = time_commands(args.jobs, tmp / "commands")

    print(f"cells: {args.cells} (digits, {args.n_per_class}/class, every registered metric), {len(records)} records each way")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; times are means of ABBA runs")
    print(f"inline:               {inline_s:7.2f} s  {args.cells / inline_s:7.2f} cells/s")
    print(f"local ({n_jobs} jobs, {args.workers} workers): {local_s:7.2f} s  {args.cells / local_s:7.2f} cells/s"
          f"  (x{inline_s / local_s:.2f} of inline)")
    print(f"no-op local job:      {noop:7.2f} s per job (submit + worker start + result)")
    print(f"'python -c' command:  {plain:7.2f} s plain subprocess, {ours:7.2f} s via submitit_local"
          f"  (+{ours - plain:.2f} s per job, x{ours / plain:.1f})")


if __name__ == "__main__":
    main()
