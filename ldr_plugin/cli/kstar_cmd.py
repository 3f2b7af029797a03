"""``ldr kstar FEATURES.npz``: a thin click wrapper over :func:`ldr_plugin.kstar.job.run_kstar_file`."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("kstar")
@click.argument("features", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "--output_dir", "--output-dir", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Folder for the result record and other outputs.")
@click.option("--backend", type=click.Choice(["exact", "hnsw", "screened"]), default="exact", show_default=True,
              help="exact: blocked matrix products; hnsw / screened: approximate nearest other-class search "
                   "(HNSW graphs / products over screened candidates; k* can only be too large).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--per-sample/--no-per-sample", default=False, help="Also write per-sample k*.")
@click.option("--per-sample-format", type=click.Choice(["npz", "csv"]), default="npz", show_default=True)
@click.option("--plot/--no-plot", default=True, show_default=True, help="Write the per-class violin plot.")
@click.option("--plot-format", type=click.Choice(["png", "svg"]), default="png", show_default=True)
@click.option("--model-id", default=None, help="Record model id 'source:identifier' [file:<stem>].")
@click.option("--dataset", default=None, help="Record dataset name [file stem].")
@click.option("--split", default="all", show_default=True)
@click.option("--layer", default="features", show_default=True, help="Feature layer the file holds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Record seed; seeds the approximate backends.")
@click.option("--threshold", type=float, default=0.5, show_default=True, help="Pattern threshold t on γ.")
@click.option("--json", "as_json", is_flag=True, help="Print the result record (JSON) instead of the summary table.")
@click.option("--infinite", type=click.Choice(["exclude", "clip"]), default="exclude", show_default=True,
              help="Classes with infinite/undefined γ in Γ′: exclude (and count) or clip.")
def kstar(features: Path, out_dir: Path, backend: str, dtype: str, per_sample: bool, per_sample_format: str,
          plot: bool, plot_format: str, model_id: str | None, dataset: str | None, split: str, layer: str,
          seed: int, threshold: float, as_json: bool, infinite: str) -> None:
    """Compute k* metrics of FEATURES.npz (arrays 'features', 'labels', optional 'class_names').

    Writes one result record (kind 'kstar') into --out, optionally per-sample k* and a violin plot,
    and prints a summary table.
    """
    # torch: imported when the command runs, not for --help
    from ldr_plugin.kstar.job import KStarJob, run_kstar_file
    from ldr_plugin.kstar.report import summary_table

    job = KStarJob(
        features_path=features, out_dir=out_dir, backend=backend, dtype=dtype, per_sample=per_sample,
        per_sample_format=per_sample_format, plot=plot, plot_format=plot_format, model_id=model_id,
        dataset=dataset, split=split, layer=layer, seed=seed, threshold=threshold, infinite=infinite,
    )
    outputs = run_kstar_file(job, command=["ldr", *sys.argv[1:]] if sys.argv else None)
    if as_json:
        click.echo(Path(outputs.record_path).read_text(), nl=False)
        return
    click.echo(summary_table(outputs.summary))
    click.echo(f"record: {outputs.record_path}")
    for label, path in (("per-sample", outputs.per_sample_path), ("plot", outputs.plot_path)):
        if path is not None:
            click.echo(f"{label}: {path}")
