"""The main job end to end on a tiny budget: train (built-in loop) → score → leaderboards, then the CI check."""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from ldr_plugin.cli.demo_cmd import demo
from ldr_plugin.demo import DemoConfig, heldout_cells, run_demo, selected_cells
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


@pytest.mark.slow
def test_demo_trains_scores_and_builds(tmp_path):
    out = tmp_path / "demo"
    cli_args = ["--quick", "--out", str(out), "--engine", "builtin", "--steps", "3", "--algorithms", "ERM,LatentDR"]
    result = CliRunner().invoke(demo, cli_args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "demo.json").read_text())
    config = DemoConfig.preset(quick=True, out_dir=str(out), engine="builtin", steps=3, algorithms=("ERM", "LatentDR"))
    assert manifest["training"] == {"engine": "builtin", "jobs": 12, "already_done": 0, "trained": 12, "failed": 0}
    assert check_demo_output(out) == []
    # the console: a few lines and the verdict; each run's DomainBed output in its out.txt only
    lines = result.output.splitlines()
    assert len(lines) <= 60 and "Environment:" not in result.output and "Verdict: 3 steps" in result.output
    assert "One trial: there is no error bar" in result.output and "Leave-one-domain-out selection is not shown" in result.output
    sweep = out / "sweep"
    assert all("Environment:" in (run / "out.txt").read_text() for run in sweep.iterdir())
    # the verdict's Δ is the Averages table's LatentDR − ERM (one trial: DomainBed's own formula)
    averages = next(t for t in domainbed_tables(SweepSelection.build(read_sweep(str(sweep), progress=False)))
                    if t.table_id == "averages__iid")
    avg = {r.label: r.cells[-1].value for r in averages.rows}
    assert _verdict_deltas(manifest["verdict"]) == {"LatentDR": round(avg["LatentDR"] - avg["ERM"], 1)}
    assert "leaderboards/dg_study_5001" in result.output  # placed against the checked-in studies
    # one record per (held-out run, metric family), each on the run's own test domain, plus one per
    # earlier checkpoint training-domain validation selected (the built-in loop saved every checkpoint;
    # the unselected ones are removed after scoring, and the console says how much was written)
    cells, earlier = heldout_cells(sweep), selected_cells(sweep)
    assert len(cells) == 12 and earlier and manifest["n_scored"] == len(cells) + len(earlier)
    assert all(c.model_id.endswith(".pkl") and "/model_step" in c.model_id for c in earlier)
    kept = {p.resolve() for p in sweep.glob("*/model_step*.pkl")}
    assert kept == {Path(c.model_id.split(":", 1)[1]).resolve() for c in earlier}
    assert manifest["disk"]["pruned_checkpoints"] == 2 * 12 - len(kept)  # steps 0 and 2 were saved
    assert f"{manifest['disk']['pruned_checkpoints']} unselected removed" in result.output
    records = [msgspec.to_builtins(read_record(p)) for p in (tmp_path / "demo" / "scores").rglob("*.result.json")]
    assert sorted({r["metric_family"] for r in records}) == ["alignment", "kstar", "uniformity"]
    assert len(records) == 3 * manifest["n_scored"]
    for record in records:
        run_dir = record["model_id"].split(":", 1)[1].removesuffix(".pkl").rsplit("/model_step", 1)[0]
        last = json.loads((sweep / run_dir.rsplit("/", 1)[1] / "results.jsonl").read_text().splitlines()[-1])
        assert record["dataset"] == f"run:env{last['args']['test_envs'][0]}" and record["split"] == "in"
    assert "final_checkpoint" not in (tmp_path / "demo" / "leaderboard" / "dg_study.csv").read_text()
    # k* vs held-out accuracy: one point per run (its final model), the scored earlier checkpoints left out
    with (tmp_path / "demo" / "leaderboard" / "kstar_vs_heldout.csv").open() as handle:
        rows = {r["row"] for r in csv.DictReader(handle) if r["table"] == "kstar_vs_heldout__models"}
    assert len(rows) == len(cells)
    expected = set()  # rows are named by algorithm, held-out domain, trial and run folder
    for cell in cells:
        run = sweep / cell.model_id.rsplit("/", 1)[1]
        args = json.loads((run / "results.jsonl").read_text().splitlines()[0])["args"]
        expected.add(f"{args['algorithm']} · RotatedDigitsFlat env{args['test_envs'][0]} · "
                     f"trial {args['trial_seed']} · {run.name[:8]}")
    assert rows == expected
    board = (tmp_path / "demo" / "leaderboard")
    assert "LatentDR" in (board / "dg_study.md").read_text()
    assert "held-out domain acc" in (board / "kstar_vs_heldout.md").read_text()
    # re-running resumes: nothing left to train or score
    again = run_demo(config, log=lambda _msg: None)
    assert again["training"]["already_done"] == 12 and again["training"]["trained"] == 0
    # -q (the root group sets the ldr_plugin logger to WARNING): the verdict only
    logger = logging.getLogger("ldr_plugin")
    before = logger.level
    try:
        logger.setLevel(logging.WARNING)
        quiet = CliRunner().invoke(demo, cli_args)
    finally:
        logger.setLevel(before)
    assert quiet.exit_code == 0, (quiet.output, quiet.exception)
    assert quiet.output.splitlines() == again["verdict"]


def test_demo_check_reports_missing_output(tmp_path):
    assert check_demo_output(tmp_path) != []
