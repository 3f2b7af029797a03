"""The main job end to end on a tiny budget: train (built-in loop) → score → leaderboards, then the CI check;
and its console as a user sees it: the installed ``ldr`` on a pseudo-terminal (where progress bars are
drawn), with and without ``-q`` / ``-v``."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import msgspec
import pytest

from ldr_plugin.demo import DemoConfig, heldout_cells, run_demo, selected_cells, summary_text
from ldr_plugin.demo_check import check_demo_output
from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables
from ldr_plugin.results import read_record


def _verdict_deltas(lines: list[str]) -> dict[str, float]:
    """{algorithm: Δ} from the verdict's table lines ('  LatentDR   16.6 (n=1)   Δ +1.8 (n=1, no SE)')."""
    found = {}
    for line in lines:
        match = re.match(r"^  (\S+)\s+\d+\.\d.*Δ ([+-]\d+\.\d)", line)
        if match:
            found[match[1]] = float(match[2])
    return found


QUICK = ["--quick", "--engine", "builtin", "--steps", "3", "--algorithms", "ERM,LatentDR"]


def ldr_on_terminal(args: list[str], timeout: float = 900.0) -> tuple[int, str]:
    """Run the installed ``ldr`` with a pseudo-terminal as stdin, stdout and stderr (so progress bars
    are drawn as a user would see them); returns the exit code and everything written to the terminal
    (its ``\\r\\n`` line ends made ``\\n``; a bar's redraws stay ``\\r``-separated)."""
    script = Path(sys.executable).with_name("ldr")
    command = [str(script)] if script.is_file() else \
        [sys.executable, "-c", "import sys; from ldr_plugin.cli import run; sys.argv[0] = 'ldr'; run()"]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns, 40 rows
    env = {**os.environ, "TERM": "xterm"}
    proc = subprocess.Popen(command + args, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        if not select.select([master], [], [], 1.0)[0]:
            continue
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    else:
        proc.kill()
    os.close(master)
    code = proc.wait(timeout=60)
    return code, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def visible(line: str) -> str:
    """What a terminal shows of one line: each ``\\r`` goes back to its start, later text overwrites
    (a cleared bar is spaces), trailing spaces dropped."""
    shown = ""
    for part in line.split("\r"):
        shown = part + shown[len(part):]
    return shown.rstrip()


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """``ldr demo --quick`` (3 steps, ERM and LatentDR) on a terminal: (folder, terminal output, demo.json
    as this run wrote it). Tests that run the demo again resume from it (nothing left to train)."""
    out = tmp_path_factory.mktemp("quick") / "demo"
    code, output = ldr_on_terminal(["demo", *QUICK, "--out", str(out)])
    assert code == 0, output
    return out, output, json.loads((out / "demo.json").read_text())


@pytest.mark.slow
def test_demo_trains_scores_and_builds(quick_demo):
    out, output, manifest = quick_demo
    config = DemoConfig.preset(quick=True, out_dir=str(out), engine="builtin", steps=3, algorithms=("ERM", "LatentDR"))
    assert manifest["training"] == {"engine": "builtin", "jobs": 12, "already_done": 0, "trained": 12, "failed": 0}
    assert check_demo_output(out) == []
    # the console (neither -v nor -q): at most 60 lines ending in the verdict; each run's DomainBed
    # output in its out.txt only
    lines = output.split("\n")  # terminal lines (a bar redrawn with \r stays on its line)
    assert len(lines) <= 60 and "Environment:" not in output and "Verdict: 3 steps" in output
    # one bar per phase, nothing nested (no k* bar per scored cell, no cursor moves)
    assert [line.split("\r")[-1].split(":")[0] for line in lines if "\r" in line] == ["train", "score"]
    assert "\x1b" not in output
    verdict = (out / "verdict.txt").read_text().splitlines()
    start = lines.index(verdict[0])
    assert lines[start:start + len(verdict)] == verdict
    assert "One trial: there is no error bar" in output and "Leave-one-domain-out selection is not shown" in output
    sweep = out / "sweep"
    assert all("Environment:" in (run / "out.txt").read_text() for run in sweep.iterdir() if run.is_dir())
    # the verdict's Δ is the Averages table's LatentDR − ERM (one trial: DomainBed's own formula)
    averages = next(t for t in domainbed_tables(SweepSelection.build(read_sweep(str(sweep), progress=False)))
                    if t.table_id == "averages__iid")
    avg = {r.label: r.cells[-1].value for r in averages.rows}
    assert _verdict_deltas(manifest["verdict"]) == {"LatentDR": round(avg["LatentDR"] - avg["ERM"], 1)}
    assert "leaderboards/dg_study_5001" in output  # placed against the checked-in studies
    # one record per (held-out run, metric family), each on the run's own test domain, plus one per
    # earlier checkpoint training-domain validation selected (the built-in loop saved every checkpoint;
    # the unselected ones are removed after scoring, and the console says how much was written)
    cells, earlier = heldout_cells(sweep), selected_cells(sweep)
    assert len(cells) == 12 and earlier and manifest["n_scored"] == len(cells) + len(earlier)
    assert all(c.model_id.endswith(".pkl") and "/model_step" in c.model_id for c in earlier)
    kept = {p.resolve() for p in sweep.glob("*/model_step*.pkl")}
    assert kept == {Path(c.model_id.split(":", 1)[1]).resolve() for c in earlier}
    assert manifest["disk"]["pruned_checkpoints"] == 2 * 12 - len(kept)  # steps 0 and 2 were saved
    assert f"{manifest['disk']['pruned_checkpoints']} unselected removed" in output
    records = [msgspec.to_builtins(read_record(p)) for p in (out / "scores").rglob("*.result.json")]
    assert sorted({r["metric_family"] for r in records}) == ["alignment", "kstar", "uniformity"]
    assert len(records) == 3 * manifest["n_scored"]
    for record in records:
        run_dir = record["model_id"].split(":", 1)[1].removesuffix(".pkl").rsplit("/model_step", 1)[0]
        last = json.loads((sweep / run_dir.rsplit("/", 1)[1] / "results.jsonl").read_text().splitlines()[-1])
        assert record["dataset"] == f"run:env{last['args']['test_envs'][0]}" and record["split"] == "in"
    assert "final_checkpoint" not in (out / "leaderboard" / "dg_study.csv").read_text()
    # k* vs held-out accuracy: one point per run (its final model), the scored earlier checkpoints left out
    with (out / "leaderboard" / "kstar_vs_heldout.csv").open() as handle:
        rows = {r["row"] for r in csv.DictReader(handle) if r["table"] == "kstar_vs_heldout__models"}
    assert len(rows) == len(cells)
    expected = set()  # rows are named by algorithm, held-out domain, trial and run folder
    for cell in cells:
        run = sweep / cell.model_id.rsplit("/", 1)[1]
        args = json.loads((run / "results.jsonl").read_text().splitlines()[0])["args"]
        expected.add(f"{args['algorithm']} · RotatedDigitsFlat env{args['test_envs'][0]} · "
                     f"trial {args['trial_seed']} · {run.name[:8]}")
    assert rows == expected
    board = (out / "leaderboard")
    assert "LatentDR" in (board / "dg_study.md").read_text()
    assert "held-out domain acc" in (board / "kstar_vs_heldout.md").read_text()
    # re-running resumes: nothing left to train or score
    again = run_demo(config, log=lambda _msg: None)
    assert again["training"]["already_done"] == 12 and again["training"]["trained"] == 0


def test_demo_check_reports_missing_output(tmp_path):
    assert check_demo_output(tmp_path) != []


@pytest.mark.slow
def test_cli_quiet_shows_the_verdict_only_and_verbose_the_runs(quick_demo, tmp_path):
    out, _, _ = quick_demo
    # ldr -q, resuming (nothing to train or score): exactly the verdict the demo writes to verdict.txt;
    # no progress bar, no log line, no per-run line
    code, output = ldr_on_terminal(["-q", "demo", *QUICK, "--out", str(out)])
    assert code == 0, output
    verdict = (out / "verdict.txt").read_text().splitlines()
    assert verdict[0].startswith("Verdict: 3 steps") and len(verdict) > 5
    assert "\r" not in output and output.split("\n") == [*verdict, ""]
    # ldr -v on a copy of the sweep with one run deleted: that run is trained again and everything it
    # writes to its out.txt (DomainBed's Environment, Args, HParams, the results table) is also on the
    # terminal, in one piece; then DomainBed's Averages tables and the verdict
    copy = tmp_path / "demo"
    shutil.copytree(out / "sweep", copy / "sweep")
    run = min(p for p in (copy / "sweep").iterdir() if (p / "done").is_file())
    shutil.rmtree(run)
    code, output = ldr_on_terminal(["-v", "demo", *QUICK, "--out", str(copy)])
    assert code == 0, output
    # (the run's step bar is drawn and cleared around its rows: compare what the terminal shows)
    shown = [visible(line) for line in output.split("\n")]
    written = [line.rstrip() for line in (run / "out.txt").read_text().splitlines()]
    assert written[0] == "Environment:" and "Args:" in written and "HParams:" in written
    assert len(written) > 30 and shown.count("Environment:") == 1  # one run trained, its output shown
    start = shown.index("Environment:")
    assert shown[start:start + len(written)] == written
    averages = [line.rstrip() for line in summary_text(copy / "sweep").splitlines()]
    start = shown.index(averages[0])
    assert shown[start:start + len(averages)] == averages
    verdict = [line.rstrip() for line in (copy / "verdict.txt").read_text().splitlines()]
    start = shown.index(verdict[0])
    assert shown[start:start + len(verdict)] == verdict


@pytest.mark.slow
def test_selected_metrics_leaves_out_a_trial_missing_a_domain(quick_demo, tmp_path):
    """studies/selected_metrics.py on the demo's scored sweep: every algorithm has its one trial; with one
    held-out domain's LatentDR run removed, LatentDR's trial is left out (not averaged over the domains
    left) and the pairing says there is no common trial, while ERM's numbers do not change."""
    out, _, _ = quick_demo
    script = Path(__file__).resolve().parents[1] / "studies" / "selected_metrics.py"
    sweep = tmp_path / "sweep"
    shutil.copytree(out / "sweep", sweep)
    args = {p.parent: json.loads(p.read_text().splitlines()[0])["args"] for p in sweep.glob("*/results.jsonl")}
    dataset = next(iter(args.values()))["dataset"]

    def report() -> dict[str, dict[str, str]]:
        done = subprocess.run([sys.executable, str(script), str(sweep), str(out / "scores"), "--dataset", dataset,
                               "--baseline", "ERM"], check=False, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        found: dict[str, dict[str, str]] = {}
        metric = ""
        for line in done.stdout.splitlines():
            if line and not line.startswith(" ") and "," not in line:
                metric = line.split()[0]
            elif line.startswith("  ") and metric:
                found.setdefault(metric, {})[line.split()[0]] = line
        return found

    whole = report()
    assert set(whole) == {"gamma_prime", "alignment", "uniformity"}
    for lines in whole.values():
        assert "(n=1)" in lines["ERM"] and "(n=1)" in lines["LatentDR"] and "n=1)" in lines["LatentDR"].split("ERM − X")[1]
    gone = min(run for run, a in args.items() if a["algorithm"] == "LatentDR")
    shutil.rmtree(gone)
    part = report()
    for metric, lines in part.items():
        assert "(n=0)" in lines["LatentDR"] and "ERM − X: no common trial" in lines["LatentDR"]
        assert lines["ERM"] == whole[metric]["ERM"]
