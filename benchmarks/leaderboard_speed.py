"""Leaderboard speed: our DomainBed model selection vs DomainBed's collect_results on one synthetic sweep.

    DOMAINBED_DIR=/work/DomainBed python benchmarks/leaderboard_speed.py [--records 100000] [--keep DIR]

Generates a synthetic sweep in DomainBed's exact schema (benchmarks/make_synthetic_sweep.py), then in
the same run times, each as a fresh process (interpreter start and imports included), ``--repeat``
times each, alternating, keeping the minimum:
  ours:     ldr leaderboard collect --input_dir SWEEP --order listdir  (read + 3 selection methods + tables)
  DomainBed: python -m domainbed.scripts.collect_results --input_dir COPY (when DOMAINBED_DIR is set)
checks that both print the same text, and prints wall and CPU times (user + sys of each child process,
from getrusage(RUSAGE_CHILDREN); the CPU ratio is the one to trust on a shared machine), records/s and
the ratios, plus an in-process CPU breakdown of both (read / select / tables). Nothing is cached
between runs: every run parses every file (cold in the sense that matters; the OS page cache is warm
for both alike).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep


def _timed(cmd: list[str], cwd: str | None = None, env: dict | None = None) -> tuple[float, float, str]:
    """(wall s, CPU s = user + sys of the child process, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def _breakdown(sweep: Path) -> dict[str, float]:
    from ldr_plugin.domainbed.runs import read_sweep
    from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables

    t0 = time.process_time()
    s = read_sweep(sweep, progress=False, order="listdir")
    t1 = time.process_time()
    sel = SweepSelection.build(s)  # columns only: full record dicts are never built on this path
    t2 = time.process_time()
    domainbed_tables(sel, domainbed_only=True)
    t3 = time.process_time()
    return {"read": t1 - t0, "select (3 methods)": t2 - t1, "tables": t3 - t2, "total": t3 - t0}


def _domainbed_breakdown(root: str, sweep: Path) -> dict[str, float]:
    """CPU time of DomainBed's own loading and of its table printing (3 methods), in this process."""
    import contextlib
    import io

    sys.path.insert(0, root)
    from domainbed import model_selection
    from domainbed.lib import reporting
    from domainbed.scripts import collect_results as cr

    t0 = time.process_time()
    records = reporting.load_records(str(sweep))
    t1 = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        for method in (model_selection.IIDAccuracySelectionMethod, model_selection.LeaveOneOutSelectionMethod,
                       model_selection.OracleSelectionMethod):
            cr.print_results_tables(records, method, latex=False)
    t2 = time.process_time()
    return {"load_records": t1 - t0, "select + tables (3 methods)": t2 - t1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="leaderboard speed vs DomainBed collect_results")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keep", default=None, help="write the sweep here and keep it")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command; the minimum is kept")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="ldr_bench_"))
    sweep = work / "sweep"
    if not sweep.exists():
        n = write_synthetic_sweep(sweep, n_records=args.records, seed=0)
        print(f"synthetic sweep: {n} records in {sum(1 for _ in sweep.iterdir())} runs at {sweep}")
    ldr = [sys.executable, "-c", "import sys; from ldr_plugin.cli import run; sys.argv[0] = 'ldr'; run()"]
    ours_cmd = [*ldr, "leaderboard", "collect", "--input_dir", str(sweep), "--order", "listdir"]
    root = os.environ.get("DOMAINBED_DIR")
    copy = work / "sweep_domainbed"
    if root and not copy.exists():
        shutil.copytree(sweep, copy)  # collect_results writes results.txt into its input dir
    theirs_cmd = [sys.executable, "-m", "domainbed.scripts.collect_results", "--input_dir", str(copy)]
    env = {**os.environ, "PYTHONPATH": root or "", "DOMAINBED_PLUGINS_DISABLE": "1"}
    ours_runs, theirs_runs = [], []
    for _ in range(args.repeat):
        ours_runs.append(_timed(ours_cmd))
        if root:
            theirs_runs.append(_timed(theirs_cmd, cwd=root, env=env))
    ours_s, ours_cpu, ours_out = min(r[0] for r in ours_runs), min(r[1] for r in ours_runs), ours_runs[0][2]
    n_records = int(ours_out.split("\n", 1)[0].split(":")[1])
    print(f"ours (ldr leaderboard collect, fresh process): wall {ours_s:.2f} s, CPU {ours_cpu:.2f} s, "
          f"{n_records / ours_cpu:,.0f} records per CPU-second")
    runs = [_breakdown(sweep) for _ in range(args.repeat)]
    ours = {part: min(r[part] for r in runs) for part in runs[0]}
    for part, seconds in ours.items():
        print(f"  ours in-process CPU {part}: {seconds:.2f} s")
    if root:
        theirs_s, theirs_cpu = min(r[0] for r in theirs_runs), min(r[1] for r in theirs_runs)
        same = (copy / "results.txt").read_text() == ours_out
        print(f"DomainBed collect_results (fresh process): wall {theirs_s:.2f} s, CPU {theirs_cpu:.2f} s, "
              f"{n_records / theirs_cpu:,.0f} records per CPU-second")
        print(f"speed-up: CPU {theirs_cpu / ours_cpu:.1f}x, wall {theirs_s / ours_s:.1f}x; identical output: {same}")
        theirs = _domainbed_breakdown(root, sweep)
        for part, seconds in theirs.items():
            print(f"  DomainBed in-process CPU {part}: {seconds:.2f} s")
        print(f"  in-process: read DomainBed/ours {theirs['load_records'] / ours['read']:.1f}x; select + tables "
              f"{theirs['select + tables (3 methods)'] / (ours['select (3 methods)'] + ours['tables']):.1f}x; "
              f"total {sum(theirs.values()) / ours['total']:.1f}x")
    else:
        print("DOMAINBED_DIR not set: DomainBed not timed")
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
