"""The main job, end to end, on embedded data: train → score → leaderboard.

1. **Train** ERM, LatentDR and one ablation on the embedded digits domains through the DomainBed
   protocol (every domain held out in turn; with test-domain pairs for leave-one-domain-out
   selection in the full run): DomainBed's own ``sweep`` when DomainBed is importable, the built-in
   loop otherwise. Both write DomainBed's run folders (``results.jsonl``, ``model.pkl``, ``done``).
2. **Score** each run's final featurizer on its held-out domain with every registered metric
   (k*, alignment, uniformity): one result record per (run, metric family). With the built-in
   loop every checkpoint is saved (``model_step<k>.pkl``), and the checkpoints the selection
   methods pick are scored too, so the leaderboard's k* columns are those of the selected
   checkpoints (DomainBed's sweep cannot save them: its tables fall back to final models, marked).
3. **Build** the leaderboards (Markdown, CSV, LaTeX, HTML, plots).
4. **Verdict** (:mod:`ldr_plugin.demo_verdict`): per dataset each algorithm against ERM, paired over
   trials (SE, n), placed against the checked-in studies of the same protocol; written to
   ``verdict.txt`` and ``demo.json`` and printed last.

Each run's output goes to its ``out.txt`` (the terminal shows one bar per phase) unless ``verbose``.
After scoring, the ``model_step<k>.pkl`` files no selection method picked are removed (scoring needs
``model.pkl`` and the picked ones); ``demo.json`` records the disk use.

Re-running with the same ``--out`` skips finished runs and records and resumes the rest.

>>> cfg = DemoConfig.preset(quick=True)
>>> cfg.datasets, cfg.n_trials
(('RotatedDigitsFlat',), 1)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ldr_plugin.demo_verdict import verdict_lines
from ldr_plugin.domainbed.console import quiet_runs
from ldr_plugin.domainbed.extras import saved_selected_checkpoints
from ldr_plugin.domainbed.host import domainbed_root
from ldr_plugin.domainbed.runs import read_run_records, read_sweep
from ldr_plugin.domainbed.sweep import SweepConfig, choose_engine, sweep
from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables, render_domainbed_text
from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard.build import build_leaderboards, default_command
from ldr_plugin.progress import one_bar, progress
from ldr_plugin.registry_files import registry_file
from ldr_plugin.results import atomic_write_text
from ldr_plugin.scoring.cells import ScoreCell, score_cell

SPECS = ("dg_study.toml", "kstar_vs_heldout.toml")


@dataclass(frozen=True)
class DemoConfig:
    """What the demo trains and scores; :meth:`preset` gives the full and ``--quick`` defaults."""
    out_dir: str = "ldr-demo"
    datasets: tuple[str, ...] = ("RotatedDigitsFlat", "CorruptedDigitsFlat")
    algorithms: tuple[str, ...] = ("ERM", "LatentDR", "LatentDRNoise")
    n_trials: int = 2  # two trials at least, so that every difference has a standard error
    steps: int = 200
    batch_size: int = 32
    single_test_envs: bool = False
    engine: str = "auto"  # auto | builtin | domainbed

    @classmethod
    def preset(cls, quick: bool = False, **overrides: Any) -> DemoConfig:
        if quick:
            base = cls(datasets=("RotatedDigitsFlat",), n_trials=1, steps=100, batch_size=32, single_test_envs=True)
        else:
            base = cls()
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    def sweep_config(self, save_model_every_checkpoint: bool = False) -> SweepConfig:
        return SweepConfig(
            datasets=list(self.datasets), algorithms=list(self.algorithms), n_trials=self.n_trials,
            n_hparams_from=0, n_hparams=1, steps=self.steps,
            hparams=json.dumps({"batch_size": self.batch_size}, sort_keys=True),
            single_test_envs=self.single_test_envs, save_model_every_checkpoint=save_model_every_checkpoint,
        )


def train_stage(config: DemoConfig, sweep_dir: Path, log) -> dict[str, Any]:
    """Run (or resume) the sweep with DomainBed's scripts when available, else the built-in loop
    (which also saves every checkpoint, so the selected ones can be scored)."""
    engine = choose_engine(config.engine)
    log(f"training {', '.join(config.algorithms)} on {', '.join(config.datasets)}: every domain held out"
        f"{' alone' if config.single_test_envs else ' alone and in pairs'}, {config.n_trials} trial(s), "
        f"{config.steps} steps, batch {config.batch_size} per domain")
    if engine == "domainbed":
        log(f"training with DomainBed's own sweep (DomainBed at {domainbed_root()})")
        counts = sweep(config.sweep_config(), sweep_dir, engine=engine)
        return {"engine": "domainbed", "domainbed_root": str(domainbed_root()), **counts}
    why = "--engine builtin" if config.engine == "builtin" else "DomainBed not importable"
    log(f"training with the built-in loop ({why}), saving every checkpoint")
    return {"engine": "builtin", **sweep(config.sweep_config(save_model_every_checkpoint=True), sweep_dir,
                                         engine=engine)}


def heldout_cells(sweep_dir: Path) -> list:
    """One scoring cell per finished single-test-domain run of a sweep folder: its final featurizer
    on its held-out domain (in split). Pair runs (for leave-one-domain-out) are not scored."""
    cells = []
    for run in sorted(p for p in Path(sweep_dir).iterdir() if (p / "done").is_file()):
        records = read_run_records(run)
        test_envs = records[0]["args"]["test_envs"] if records else []
        if len(test_envs) == 1:
            cells.append(ScoreCell(f"domainbed:{run.resolve()}", f"run:env{test_envs[0]}", "in", "featurizer"))
    return cells


def selected_cells(sweep_dir: Path) -> list:
    """One scoring cell per checkpoint a selection method picked before its run's last step, when
    that checkpoint was saved (``model_step<k>.pkl``): its featurizer on the group's test domain."""
    saved, _ = saved_selected_checkpoints(SweepSelection.build(read_sweep(str(sweep_dir), progress=False)))
    return [ScoreCell(f"domainbed:{path}", f"run:env{env}", "in", "featurizer") for path, env in saved]


def prune_checkpoints(sweep_dir: Path, keep: list) -> tuple[int, int]:
    """Delete the ``model_step<k>.pkl`` files of finished runs that no selection method picked (scoring
    needs only the picked ones and ``model.pkl``); returns (files, bytes) removed."""
    wanted = {Path(cell.model_id.split(":", 1)[1]).resolve() for cell in keep}
    n, size = 0, 0
    for path in sorted(Path(sweep_dir).glob("*/model_step*.pkl")):
        if (path.parent / "done").is_file() and path.resolve() not in wanted:
            size += path.stat().st_size
            path.unlink()
            n += 1
    return n, size


def disk_usage(folder: Path) -> int:
    """Bytes of the files under ``folder`` (hard links counted once)."""
    seen, total = set(), 0
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def score_stage(cells: list, scores_dir: Path, log) -> int:
    """Score every cell (finished ones are skipped); a failing cell is an error naming it."""

    failed = []
    for cell in progress(cells, desc="score", unit="run"):  # a bar on a terminal, lines in a log, none under -q
        try:
            with one_bar():  # this bar only: no k* bar per cell
                score_cell(cell, scores_dir, progress=False)
        except LdrError as exc:
            failed.append(f"{cell.model_id} {cell.dataset}: {exc}")
    if failed:
        raise LdrError(f"{len(failed)} of {len(cells)} scoring cells failed:\n  " + "\n  ".join(failed))
    log(f"scored {len(cells)} (model, held-out domain) cells into {scores_dir}")
    return len(cells)


def build_stage(sweep_dir: Path, scores_dir: Path, board_dir: Path) -> list[Path]:

    specs = [str(registry_file("leaderboards", name)) for name in SPECS]
    results = [str(sweep_dir), str(scores_dir)]
    command = default_command(specs, results, board_dir, None)
    return build_leaderboards(specs, results, board_dir, command=command, progress=False)


def summary_text(sweep_dir: Path) -> str:
    """DomainBed's 'Averages' tables (all three selection methods) of the demo's sweep, as text."""
    sweep = read_sweep(str(sweep_dir), progress=False)
    tables = [t for t in domainbed_tables(SweepSelection.build(sweep)) if t.kind == "domainbed_averages"]
    return render_domainbed_text(tables, len(sweep))


def run_demo(config: DemoConfig, log=print, verbose: bool = False) -> dict[str, Any]:
    """Train, score and build into ``config.out_dir``; returns timings, disk use, the verdict and
    where everything is. Without ``verbose`` each run's output goes to its ``out.txt`` only."""
    out = Path(config.out_dir)
    sweep_dir, scores_dir, board_dir = out / "sweep", out / "scores", out / "leaderboard"
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with quiet_runs(not verbose):
        training = train_stage(config, sweep_dir, log)
    timings["train_s"] = time.perf_counter() - start
    log(f"trained {training.get('trained', training.get('done', 0))} runs "
        f"({training['jobs']} jobs) in {timings['train_s']:.0f} s; each run's output is in its out.txt")
    mark = time.perf_counter()
    selected = selected_cells(sweep_dir)
    n_scored = score_stage(heldout_cells(sweep_dir) + selected, scores_dir, log)
    pruned = prune_checkpoints(sweep_dir, selected)
    timings["score_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    paths = build_stage(sweep_dir, scores_dir, board_dir)
    timings["build_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - start
    disk = {"total_bytes": disk_usage(out), "sweep_bytes": disk_usage(sweep_dir),
            "pruned_checkpoints": pruned[0], "pruned_bytes": pruned[1]}
    verdict = verdict_lines(sweep_dir, config.steps, config.batch_size, has_pairs=not config.single_test_envs)
    manifest = {"config": asdict(config), "training": training, "n_scored": n_scored, "timings_s": timings,
                "disk": disk, "verdict": verdict,
                "sweep_dir": str(sweep_dir), "scores_dir": str(scores_dir), "leaderboard_dir": str(board_dir),
                "files": sorted(str(p.relative_to(board_dir)) for p in paths if p.is_relative_to(board_dir))}
    atomic_write_text(out / "verdict.txt", "\n".join(verdict) + "\n")
    atomic_write_text(out / "demo.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
