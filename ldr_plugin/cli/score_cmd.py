"""``ldr score``: a thin click wrapper over :func:`ldr_plugin.scoring.run.score`."""

from __future__ import annotations

import click


@click.command("score")
@click.argument("model_ids", nargs=-1)
@click.option("--dataset", "datasets", multiple=True,
              help="cifar10:ROOT, cifar100:ROOT, cifar10c:ROOT, cifar100c:ROOT, imagefolder:PATH, imagenet-val:PATH, "
                   "digits, RotatedDigits:ENV, CorruptedDigits:ENV, or 'run' (a domainbed: model's environments). "
                   "Repeatable.")
@click.option("--layer", "layers", multiple=True, help="Feature layer (default: the source's first). Repeatable.")
@click.option("--split", default=None, help="Dataset split (default: test).")
@click.option("--n-per-class", type=click.IntRange(min=2), default=None,
              help="Keep this many samples per class (seeded; at least 2).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Subsampling seed (default 0).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--weights-dir", default=None, help="RobustBench layout: <dir>/<dataset>/<threat_model>/<name>.pt.")
@click.option("--out", "--output_dir", "--output-dir", "out_dir", default="results/scores", show_default=True, help="Directory of result records.")
@click.option("--cache-dir", default=None, help="Feature cache (default: <out>/.features).")
@click.option("--selection", default=None, type=click.Path(dir_okay=False), help="A registry/selections/*.toml.")
@click.option("--data-root", default=None, help="Replaces {data_root} in a selection's datasets.")
@click.option("--trust-checkpoint", is_flag=True, help="Allow checkpoints that need arbitrary unpickling.")
@click.option("--device", default=None, help="cpu, cuda, ... (default: cuda when present).")
@click.option("--launcher", type=click.Choice(["inline", "local", "slurm"]), default="inline", show_default=True)
@click.option("--metric", "metric_names", multiple=True, metavar="FAMILY",
              help="Compute only this metric family (kstar, alignment, uniformity, ...). Repeatable; default: all.")
@click.option("--backend", type=click.Choice(["exact", "faiss", "screened", "hnsw"]), default=None,
              help="k* neighbour search (same as --metric-option kstar.backend=...).")
@click.option("--num-workers", type=click.IntRange(min=0), default=None,
              help="DataLoader processes decoding images (default: one per CPU but one, at most 8; 0: in this process).")
@click.option("--amp", is_flag=True, help="Forward under autocast (bf16; fp16 on a CUDA device without bf16).")
@click.option("--json", "as_json", is_flag=True, help="Write the summary as JSON to stdout (progress to stderr).")
@click.option("--metric-option", "metric_options", multiple=True, metavar="FAMILY.NAME=VALUE",
              help="An option of one metric family, e.g. kstar.backend=hnsw (VALUE read as JSON if it is). Repeatable.")
@click.option("--distance", type=click.Choice(["euclidean", "cosine", "mahalanobis"]), default=None,
              help="Distance of the k* metric (default euclidean): the same as --metric-option "
                   "kstar.distance=D; records are of family kstar, kstar-cosine or kstar-mahalanobis.")
def score(model_ids, datasets, layers, split, n_per_class, seed, batch_size, weights_dir, out_dir, cache_dir,
          selection, data_root, trust_checkpoint, device, launcher, metric_names, backend, num_workers, amp,
          as_json, metric_options, distance) -> None:
    """Score MODEL_ID... (source:identifier) on datasets with every registered metric.

    Features are cached; finished cells are skipped; a failing model is reported and the others
    continue. Exit code 0 when every cell succeeded, 1 otherwise (2 for bad input).
    """
    # torch: imported when the command runs, not for --help
    from ldr_plugin.scoring.run import ScoreConfig, load_selection, parse_metric_options
    from ldr_plugin.scoring.run import score as run_score
    from ldr_plugin.scoring.summary import cell_rows, json_text, table_text

    chosen = load_selection(selection, data_root=data_root) if selection else {}
    config = ScoreConfig(
        models=list(model_ids) + list(chosen.get("models", [])),
        datasets=list(datasets) or list(chosen.get("datasets", [])),
        out_dir=out_dir,
        layers=list(layers) or list(chosen.get("layers", [])) or [None],
        split=split or chosen.get("split", "test"),
        n_per_class=n_per_class if n_per_class is not None else chosen.get("n_per_class"),
        seed=seed if seed is not None else chosen.get("seed", 0),
        batch_size=batch_size, weights_dir=weights_dir, cache_dir=cache_dir,
        trust_checkpoint=trust_checkpoint, device=device, launcher=launcher,
        metric_options=parse_metric_options((*metric_options, *([f"kstar.distance={distance}"] if distance else [])),
                                            chosen.get("metric_options", {})),
        metric_names=list(metric_names) or None, num_workers=num_workers, amp=amp,
    )
    if backend is not None:
        config.metric_options.setdefault("kstar", {})["backend"] = backend
    outcomes = run_score(config)
    failed = [o for o in outcomes if o.error]
    for outcome in outcomes:
        cell = outcome.cell
        where = f"{cell.model_id} | {cell.dataset_name}/{cell.split} | {cell.layer or 'default'}"
        if outcome.error:
            click.echo(f"FAILED  {where}: {outcome.error.splitlines()[0]}", err=True)
        else:
            click.echo(f"ok      {where}: {len(outcome.paths)} record(s)", err=as_json)
        for note in outcome.notes:
            click.echo(f"note    {where}: {note}", err=True)
    rows = cell_rows(outcomes)
    click.echo(json_text(rows) if as_json else "\n" + table_text(rows))
    click.echo(f"{len(outcomes) - len(failed)}/{len(outcomes)} cells scored into {out_dir}", err=as_json)
    if failed:  # a ClickException (exit code 1): ldr's main() returns its code, unlike a bare Exit
        raise click.ClickException(f"{len(failed)} of {len(outcomes)} cells failed (see FAILED lines above)")
