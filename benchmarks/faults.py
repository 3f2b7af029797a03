"""Soak test: SIGKILL ``ldr`` commands at random moments, rerun, and count what went wrong.

For each command a reference run goes uninterrupted first; then the same command is started
``--kills`` times on one folder and SIGKILLed after a random delay (the parent process only: for
``--launcher local`` its workers must stop by themselves), and finally run to completion. Counted:

- kills: SIGKILLs delivered while the command was still running;
- orphans: processes of a killed invocation (its submitit workers) still alive 60 s after the kill,
  and workers_gone_s, the longest time until the last of them was gone (a worker still importing
  torch notices its launcher's death only once its job body starts);
- corrupt: record files or results.jsonl lines that do not validate after the final run;
- lost: reference cells / runs missing after the final run; duplicated: cells or steps twice;
- differ: cells whose numbers (or ``collect`` text) differ from the reference run;
- mixed: after a kill, a leaderboard folder that is neither one whole build nor marked incomplete.

Commands: ``score-inline`` / ``score-local`` (``ldr score`` of tiny random models from a model
source installed by entry point, every metric, embedded digits), ``train-sweep`` (``ldr train
--sweep``, built-in engine, inline), ``leaderboard`` (``ldr leaderboard build``, alternating between
two result folders so that a mixed folder would show).

    python benchmarks/faults.py --kills 20 --work /tmp/ldr-faults
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ldr_plugin.check import check_results
from ldr_plugin.results.io import iter_record_paths, read_record
from ldr_plugin.testing import tiny_distribution

LDR = [sys.executable, "-c", "from ldr_plugin.cli import run; run()"]
MODELS = [f"tiny:net{i}" for i in range(6)]
DATASETS = ["digits", "RotatedDigits:0", "RotatedDigits:45", "CorruptedDigits:fog"]


def score_args(out: Path, launcher: str) -> list[str]:
    args = ["score", *MODELS, "--out", str(out), "--n-per-class", "20", "--launcher", launcher]
    return args + [t for d in DATASETS for t in ("--dataset", d)]


def sweep_args(out: Path) -> list[str]:
    return ["train", "--sweep", "--algorithm", "ERM", "--dataset", "RotatedDigits", "--n_trials", "1",
            "--n_hparams", "1", "--steps", "2", "--single_test_envs", "--engine", "builtin", "--output_dir", str(out)]


def board_args(out: Path, results: Path, spec: Path) -> list[str]:
    return ["leaderboard", "build", str(spec), "--results", str(results), "--out", str(out), "-q"]


def run(args: list[str], env: dict[str, str], timeout: float | None = None) -> float:
    start = time.perf_counter()
    subprocess.run([*LDR, *args], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=timeout)
    return time.perf_counter() - start


def processes_under(marker: str) -> list[int]:
    """Pids of processes whose command line mentions ``marker`` (a kill's submitit log folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    state = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(proc.name))
            except OSError:
                pass
    return found


ORPHAN_AFTER_S = 60.0  # a worker still alive this long after its launcher was killed is an orphan


def kill_cycle(args: list[str], env: dict[str, str], delay: float, logs: Path | None) -> tuple[bool, int, float]:
    """Start, SIGKILL the parent after ``delay`` s; returns (killed while running, processes of the
    killed invocation alive ``ORPHAN_AFTER_S`` later, seconds until its last process was gone)."""
    proc = subprocess.Popen([*LDR, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return False, 0, 0.0
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at, orphans = time.monotonic(), []
    if logs is not None:  # a worker still importing torch under load can take a while to notice
        while (orphans := processes_under(str(logs))) and time.monotonic() < killed_at + ORPHAN_AFTER_S:
            time.sleep(0.5)
        for pid in orphans:  # counted, then cleaned up so the next cycle starts clean
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return True, len(orphans), time.monotonic() - killed_at


def record_values(folder: Path) -> dict[tuple, dict]:
    values = {}
    for path in iter_record_paths(folder):
        record = read_record(path)
        key = (record.model_id, record.dataset, record.split, record.layer, record.metric_family, record.seed)
        values[key] = {k: v.value for k, v in record.metrics.items()}
    return values


def soak_score(work: Path, env: dict[str, str], kills: int, launcher: str, rng: random.Random) -> dict:
    ref, out = work / f"score-{launcher}-ref", work / f"score-{launcher}"
    local_env = lambda tag: {**env, "LDR_SUBMITIT_FOLDER": str(work / f"logs-{launcher}-{tag}"),
                             "LDR_LOCAL_WORKERS": "2"}
    seconds = run(score_args(ref, launcher), local_env("ref"))
    counts = {"command": f"score-{launcher}", "kills": 0, "orphans": 0, "workers_gone_s": 0.0}
    for k in range(kills * 3):  # some runs finish before their kill: start again, up to 3x as often
        if counts["kills"] >= kills:
            break
        logs = work / f"logs-{launcher}-{k}"
        killed, orphans, gone_s = kill_cycle(score_args(out, launcher), local_env(k), rng.uniform(0.5, seconds),
                                             logs if launcher == "local" else None)
        counts["kills"] += killed
        counts["orphans"] += orphans
        if launcher == "local":
            counts["workers_gone_s"] = round(max(counts["workers_gone_s"], gone_s), 1)
        if not killed:  # it completed: start over from an empty folder, so later kills hit work again
            shutil.rmtree(out)
    run(score_args(out, launcher), local_env("final"))
    report = check_results(out)
    expected, got = record_values(ref), record_values(out)
    counts.update(records=len(got), corrupt=report.count("partial") + report.count("invalid"),
                  duplicated=report.count("duplicate"), lost=len(set(expected) - set(got)),
                  differ=sum(got.get(k) != v for k, v in expected.items() if k in got), reference_s=round(seconds, 1))
    return counts


def collect_text(folder: Path, env: dict[str, str]) -> str:
    return subprocess.run([*LDR, "leaderboard", "collect", "--input_dir", str(folder)], env=env, check=True,
                          capture_output=True, text=True).stdout


def soak_sweep(work: Path, env: dict[str, str], kills: int, rng: random.Random) -> dict:
    ref, out = work / "sweep-ref", work / "sweep"
    seconds = run(sweep_args(ref), env)
    counts = {"command": "train-sweep", "kills": 0, "orphans": 0}
    for _ in range(kills * 3):
        if counts["kills"] >= kills:
            break
        killed, _, _ = kill_cycle(sweep_args(out), env, rng.uniform(1.0, min(seconds, 60.0)), None)
        counts["kills"] += killed
        if not killed:
            shutil.rmtree(out)
    run(sweep_args(out), env)
    report = check_results(out)
    runs = lambda folder: sorted(p.name for p in folder.iterdir() if (p / "done").exists())
    strip = lambda text: "\n".join(line for line in text.splitlines() if not line.startswith("Total records"))
    counts.update(records=len(runs(out)), corrupt=sum(report.count(k) for k in ("malformed_line", "truncated_file",
                                                                                "bad_record", "incomplete_run")),
                  duplicated=report.count("duplicate_step") + report.count("duplicate_run"),
                  lost=len(set(runs(ref)) - set(runs(out))),
                  differ=int(strip(collect_text(out, env)) != strip(collect_text(ref, env))),
                  reference_s=round(seconds, 1))
    return counts


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def soak_board(work: Path, env: dict[str, str], kills: int, rng: random.Random) -> dict:
    """Alternate builds of one spec from two sweeps; after each kill the folder must be one whole build."""
    spec = work / "board.toml"
    spec.write_text('[leaderboard]\nid = "soak"\ntitle = "soak"\nkind = "domainbed"\n')
    results = [work / "sweep-ref", work / "sweep-ref-b"]
    if not results[1].exists():
        shutil.copytree(results[0], results[1])
        first = min(p for p in results[1].iterdir() if p.is_dir())
        shutil.rmtree(first)  # one run fewer: other numbers in every table
    builds = []
    for i, res in enumerate(results):
        seconds = run(board_args(work / f"board-ref{i}", res, spec), env)
        builds.append(snapshot(work / f"board-ref{i}"))
    out = work / "board"
    run(board_args(out, results[0], spec), env)
    counts = {"command": "leaderboard", "kills": 0, "orphans": 0, "mixed": 0, "marked": 0}

    def whole(state: dict[str, bytes]) -> bool:  # the README holds the command, whose --out differs
        same = lambda build: {k: v for k, v in state.items() if k != "README.md"} == \
            {k: v for k, v in build.items() if k != "README.md"}
        return any(same(b) for b in builds)

    for k in range(kills * 3):
        if counts["kills"] >= kills:
            break
        killed, _, _ = kill_cycle(board_args(out, results[k % 2], spec), env, rng.uniform(0.3, seconds * 1.2), None)
        counts["kills"] += killed
        state = snapshot(out)
        if ".ldr-build-incomplete" in state:
            counts["marked"] += 1
        elif not whole(state):
            counts["mixed"] += 1
    run(board_args(out, results[0], spec), env)
    final = snapshot(out)
    counts.update(corrupt=int(not whole(final)), lost=0, duplicated=0, differ=int(not whole(final)),
                  records=len(final), reference_s=round(seconds, 1))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per command")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ldr-faults"))
    parser.add_argument("--commands", default="score-inline,score-local,train-sweep,leaderboard")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep-ref", type=Path, default=None,
                        help="an uninterrupted sweep of this script to start the leaderboard soak from")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    if args.sweep_ref is not None:
        shutil.copytree(args.sweep_ref, args.work / "sweep-ref")
    site = tiny_distribution(args.work / "site", width=32)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
           "OMP_NUM_THREADS": "1", "LDR_PROGRESS_SECONDS": "600"}
    rng = random.Random(args.seed)
    rows = []
    for command in args.commands.split(","):
        start = time.perf_counter()
        if command.startswith("score-"):
            row = soak_score(args.work, env, args.kills, command.removeprefix("score-"), rng)
        elif command == "train-sweep":
            row = soak_sweep(args.work, env, args.kills, rng)
        else:
            if not (args.work / "sweep-ref").exists():
                run(sweep_args(args.work / "sweep-ref"), env)
            row = soak_board(args.work, env, args.kills, rng)
        row["soak_s"] = round(time.perf_counter() - start)
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = ["command", "kills", "records", "corrupt", "lost", "duplicated", "differ", "orphans", "workers_gone_s",
            "mixed", "marked", "reference_s", "soak_s"]
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "—")) for k in keys) + " |")


if __name__ == "__main__":
    main()
