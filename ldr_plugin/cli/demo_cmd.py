"""``ldr demo``: the main job end to end on embedded data (see :mod:`ldr_plugin.demo`).

The terminal gets one progress bar per phase (train, score; on a terminal only), a few lines of
what happened, and the verdict. ``ldr -v demo`` also shows every run's output (as DomainBed's
``train.py`` prints it) and DomainBed's Averages tables; ``ldr -q demo`` prints the verdict only.
The level is read from the ``ldr_plugin`` logger, which the root group's ``-v/-q`` set.
"""

from __future__ import annotations

import json
import logging

import click

from ldr_plugin.cli.console import verbosity
from ldr_plugin.cli.hostwarnings import quiet_host_warnings


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


@click.command("demo")
@click.option("--out", "--output_dir", "out_dir", default="ldr-demo", show_default=True,
              type=click.Path(file_okay=False),
              help="Output folder (sweep/, scores/, leaderboard/, demo.json, verdict.txt). Re-running resumes.")
@click.option("--quick", is_flag=True, help="One dataset, one trial (no error bars), no test-domain pairs, 100 steps.")
@click.option("--engine", type=click.Choice(["auto", "builtin", "domainbed"]), default="auto", show_default=True,
              help="DomainBed's own sweep when importable (auto), or the built-in loop.")
@click.option("--steps", type=int, default=None, help="Training steps per run (default: the preset's).")
@click.option("--trials", "--n_trials", "n_trials", type=int, default=None,
              help="Trials per cell (default: 2; --quick 1).")
@click.option("--datasets", default=None, help="Comma list of embedded datasets (default: the preset's).")
@click.option("--algorithms", default=None, help="Comma list of algorithms (default: ERM,LatentDR,LatentDRNoise).")
@click.option("--pairs/--no-pairs", default=None,
              help="Also train the test-domain pairs leave-one-domain-out selection needs (default: full yes, quick no).")
@click.option("--json", "as_json", is_flag=True, help="Print demo.json (timings, disk, verdict, paths) instead of text.")
@quiet_host_warnings
def demo(out_dir, quick, engine, steps, n_trials, datasets, algorithms, pairs, as_json) -> None:
    """Train ERM, LatentDR and an ablation on embedded digits domains (DomainBed protocol), score each
    held-out domain with k* and alignment/uniformity, build the leaderboard into --out, and end with
    a verdict: each algorithm against ERM, paired over trials, placed against the checked-in studies."""
    # torch: imported when the command runs, not for --help
    from ldr_plugin.demo import DemoConfig, run_demo, summary_text

    level = verbosity()
    config = DemoConfig.preset(
        quick=quick, out_dir=out_dir, engine=engine, steps=steps, n_trials=n_trials,
        datasets=tuple(datasets.split(",")) if datasets else None,
        algorithms=tuple(algorithms.split(",")) if algorithms else None,
        single_test_envs=None if pairs is None else not pairs,
    )

    def log(message: str) -> None:
        if level <= logging.INFO:
            click.echo(f"demo: {message}", err=True)

    manifest = run_demo(config, log=log, verbose=level <= logging.DEBUG)
    if as_json:
        click.echo(json.dumps(manifest, indent=2, sort_keys=True))
        return manifest
    if level <= logging.DEBUG:
        click.echo(summary_text(manifest["sweep_dir"]))
    if level <= logging.INFO:
        click.echo("")
    click.echo("\n".join(manifest["verdict"]))
    if level <= logging.INFO:
        t, disk = manifest["timings_s"], manifest["disk"]
        click.echo("")
        click.echo(f"leaderboard: {manifest['leaderboard_dir']}/index.html (and README.md, *.md, *.csv, *.tex)")
        click.echo(f"disk: {_megabytes(disk['total_bytes'])} in {out_dir}/ (checkpoints kept: model.pkl and "
                   f"the selected ones; {disk['pruned_checkpoints']} unselected removed, "
                   f"{_megabytes(disk['pruned_bytes'])})")
        click.echo(f"time: train {t['train_s']:.0f} s, score {t['score_s']:.0f} s, build {t['build_s']:.0f} s, "
                   f"total {t['total_s']:.0f} s ({manifest['training']['engine']} engine)")
    return manifest
