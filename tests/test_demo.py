"""The main job end to end on a tiny budget: train (built-in loop) → score → leaderboards, then the CI check."""

from __future__ import annotations

import csv
import json

import msgspec
import pytest

from ldr_plugin.demo import DemoConfig, heldout_cells, run_demo, selected_cells
from ldr_plugin.demo_check import check_demo_output
from ldr_plugin.results import read_record


@pytest.mark.slow
def test_demo_trains_scores_and_builds(tmp_path):
    config = DemoConfig.preset(quick=True, out_dir=str(tmp_path / "demo"), engine="builtin", steps=3,
                               algorithms=("ERM", "LatentDR"))
    manifest = run_demo(config, log=lambda _msg: None)
    assert manifest["training"] == {"engine": "builtin", "jobs": 12, "already_done": 0, "trained": 12, "failed": 0}
    assert check_demo_output(tmp_path / "demo") == []
    # one record per (held-out run, metric family), each on the run's own test domain, plus one per
    # earlier checkpoint training-domain validation selected (the built-in loop saved every checkpoint)
    sweep = tmp_path / "demo" / "sweep"
    assert all((run / "model_step0.pkl").is_file() and (run / "model_step2.pkl").is_file()
               for run in sweep.iterdir())
    cells, earlier = heldout_cells(sweep), selected_cells(sweep)
    assert len(cells) == 12 and earlier and manifest["n_scored"] == len(cells) + len(earlier)
    assert all(c.model_id.endswith(".pkl") and "/model_step" in c.model_id for c in earlier)
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


def test_demo_check_reports_missing_output(tmp_path):
    assert check_demo_output(tmp_path) != []
