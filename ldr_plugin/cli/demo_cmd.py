"""``ldr demo``: the main job end to end on embedded data (see :mod:`ldr_plugin.demo`)."""

from __future__ import annotations

import click


@click.command("demo")
@click.option("--out", "out_dir", default="ldr-demo", show_default=True, type=click.Path(file_okay=False),
              help="Output folder (sweep/, scores/, leaderboard/, demo.json). Re-running resumes.")
@click.option("--quick", is_flag=True, help="One dataset, no test-domain pairs, fewer steps (about 2 minutes).")
@click.option("--engine", type=click.Choice(["auto", "builtin", "domainbed"]), default="auto", show_default=True,
              help="DomainBed's own sweep when importable (auto), or the built-in loop.")
@click.option("--steps", type=int, default=None, help="Training steps per run (default: the preset's).")
@click.option("--trials", "n_trials", type=int, default=None, help="Trials per cell (default: the preset's).")
@click.option("--datasets", default=None, help="Comma list of embedded datasets (default: the preset's).")
@click.option("--algorithms", default=None, help="Comma list of algorithms (default: ERM,LatentDR,LatentDRNoise).")
@click.option("--pairs/--no-pairs", default=None,
              help="Also train the test-domain pairs leave-one-domain-out selection needs (default: full yes, quick no).")
def demo(out_dir, quick, engine, steps, n_trials, datasets, algorithms, pairs) -> None:
    """Train ERM, LatentDR and an ablation on embedded digits domains (DomainBed protocol), score each
    held-out domain with k* and alignment/uniformity, and build the leaderboard into --out."""
    # torch: imported when the command runs, not for --help
    from ldr_plugin.demo import DemoConfig, run_demo, summary_text

    config = DemoConfig.preset(
        quick=quick, out_dir=out_dir, engine=engine, steps=steps, n_trials=n_trials,
        datasets=tuple(datasets.split(",")) if datasets else None,
        algorithms=tuple(algorithms.split(",")) if algorithms else None,
        single_test_envs=None if pairs is None else not pairs,
    )
    manifest = run_demo(config, log=lambda msg: click.echo(f"demo: {msg}", err=True))
    click.echo(summary_text(manifest["sweep_dir"]))
    t = manifest["timings_s"]
    click.echo(f"leaderboard: {manifest['leaderboard_dir']}/index.html (and README.md, *.md, *.csv, *.tex)")
    click.echo(f"time: train {t['train_s']:.0f} s, score {t['score_s']:.0f} s, build {t['build_s']:.0f} s, "
               f"total {t['total_s']:.0f} s ({manifest['training']['engine']} engine)")
