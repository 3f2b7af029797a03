"""``studies/keep_runs.sh``: a study longer than a session keeps its finished runs' records (never a
checkpoint) and puts them back; ``ldr train`` then skips the run put back (it holds its run finished)
and the leaderboard reads the kept records as the originals."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ldr_plugin.domainbed.loop import TrainConfig, train
from ldr_plugin.domainbed.runs import read_sweep

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "keep_runs.sh"


def _keep(src: Path, dst: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(src), str(dst)], check=False, capture_output=True, text=True)


def test_finished_runs_round_trip_without_checkpoints(tmp_path):
    work = tmp_path / "work"
    config = {"algorithm": "ERM", "dataset": "RotatedDigitsFlat", "test_envs": [0], "steps": 3,
              "checkpoint_freq": 1, "save_model_every_checkpoint": True}
    train(TrainConfig(**config, output_dir=work / "erm"))
    (work / "unfinished").mkdir()
    (work / "expected_runs-0123abcd.json").write_text('{"runs": {}}\n')  # a sweep's list of expected runs
    (work / "unfinished" / "results.jsonl").write_text("{}\n")
    kept = tmp_path / "repo" / "runs"
    done = _keep(work, kept)
    assert done.returncode == 0, done.stderr
    assert "1 copied, 0 already" in done.stdout and "1 unfinished left out" in done.stdout
    assert sorted(p.name for p in (kept / "erm").iterdir()) == ["done", "err.txt", "out.txt", "results.jsonl"]
    assert (kept / "expected_runs-0123abcd.json").read_text() == '{"runs": {}}\n'
    assert not (kept / "unfinished").exists() and not list(kept.glob(".keep*"))
    assert (kept / "erm" / "results.jsonl").read_bytes() == (work / "erm" / "results.jsonl").read_bytes()

    # a later session: an empty work folder, the kept runs put back; ldr train skips them
    fresh = tmp_path / "fresh"
    assert _keep(kept, fresh).returncode == 0
    before = (fresh / "erm" / "results.jsonl").read_bytes()
    train(TrainConfig(**config, output_dir=fresh / "erm"))
    assert (fresh / "erm" / "results.jsonl").read_bytes() == before and not list((fresh / "erm").glob("*.pkl"))
    original, back = read_sweep(str(work), progress=False), read_sweep(str(fresh), progress=False)
    assert [r["env0_out_acc"] for r in back.records] == [r["env0_out_acc"] for r in original.records]
    again = _keep(work, kept)  # already kept: left as it is
    assert "0 copied, 1 already" in again.stdout
    assert _keep(tmp_path / "nowhere", kept).returncode != 0
    (tmp_path / "empty").mkdir()  # nothing to keep: said so, not counted as one unfinished run
    assert "0 copied, 0 already in" in _keep(tmp_path / "empty", kept).stdout
    (kept / ".keep.erm.abc123").mkdir()  # a copy cut short by a kill: removed, never left to be committed
    assert _keep(work, kept).returncode == 0 and not list(kept.glob(".keep*"))
