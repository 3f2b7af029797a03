"""``ldr kstar``: k* of a features file (``ldr kstar FEATURES.npz``, i.e. ``ldr kstar run``), two
models compared (``ldr kstar compare A B``) and k* under noise (``ldr kstar noise FEATURES.npz``).

Thin click wrappers over :mod:`ldr_plugin.kstar` (``job``, ``compare``, ``noise``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

DISTANCE_HELP = ("Distance neighbours are ranked by: euclidean (the papers'), cosine (rows L2-normalised) or "
                 "mahalanobis (whitened by the Ledoit-Wolf-shrunk pooled within-class covariance).")
INFINITE_HELP = ("Classes with infinite/undefined γ in Γ′: exclude (and count), clip, or notebook (the k* "
                 "authors' rule: undefined -> 0, −∞ -> the smallest finite γ).")
BACKENDS = ["exact", "hnsw", "screened", "faiss"]


class _RunByDefault(click.Group):
    """A group whose first argument, when it is not a subcommand, is the features file of ``run``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("kstar", cls=_RunByDefault, context_settings={"help_option_names": ["-h", "--help"]})
def kstar() -> None:
    """k* metrics: `ldr kstar FEATURES.npz` (= `ldr kstar run`), `ldr kstar compare A B`, `ldr kstar noise`."""


@kstar.command("run")
@click.argument("features", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "--output_dir", "--output-dir", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Folder for the result record and other outputs.")
@click.option("--backend", type=click.Choice(BACKENDS), default="exact", show_default=True,
              help="exact: blocked matrix products; hnsw / screened: approximate nearest other-class search "
                   "(HNSW graphs / products over screened candidates; k* can only be too large); faiss: exact, "
                   "faiss k-NN lists for the rows they settle (needs faiss-cpu; fast when most k* are small).")
@click.option("--distance", type=click.Choice(["euclidean", "cosine", "mahalanobis"]), default="euclidean",
              show_default=True, help=DISTANCE_HELP)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--per-sample/--no-per-sample", default=False, help="Also write per-sample k* (needed by compare).")
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
@click.option("--infinite", type=click.Choice(["exclude", "clip", "notebook"]), default="exclude",
              show_default=True, help=INFINITE_HELP)
def run(features: Path, out_dir: Path, backend: str, distance: str, dtype: str, per_sample: bool,
        per_sample_format: str, plot: bool, plot_format: str, model_id: str | None, dataset: str | None,
        split: str, layer: str, seed: int, threshold: float, as_json: bool, infinite: str) -> None:
    """Compute k* metrics of FEATURES.npz (arrays 'features', 'labels', optional 'class_names').

    Writes one result record (kind 'kstar'; metric family 'kstar', or 'kstar-cosine' /
    'kstar-mahalanobis' for the other distances) into --out, optionally per-sample k* and a violin
    plot, and prints a summary table.
    """
    # torch: imported when the command runs, not for --help
    from ldr_plugin.kstar.job import KStarJob, run_kstar_file
    from ldr_plugin.kstar.report import summary_table

    job = KStarJob(
        features_path=features, out_dir=out_dir, backend=backend, dtype=dtype, per_sample=per_sample,
        per_sample_format=per_sample_format, plot=plot, plot_format=plot_format, model_id=model_id,
        dataset=dataset, split=split, layer=layer, seed=seed, threshold=threshold, infinite=infinite,
        distance=distance,
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


@kstar.command("compare")
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "--output_dir", "--output-dir", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results/compare"),
              show_default=True, help="Folder for the JSON report and the plot.")
@click.option("--plot/--no-plot", default=True, show_default=True,
              help="Write the paired scatter and per-class violin pairs (needs per-sample k*).")
@click.option("--plot-format", type=click.Choice(["png", "svg"]), default="png", show_default=True)
@click.option("--distance", type=click.Choice(["euclidean", "cosine", "mahalanobis"]), default=None,
              help="Feature files only: " + DISTANCE_HELP + " [euclidean]")
@click.option("--backend", type=click.Choice(BACKENDS), default=None, help="Feature files only [exact].")
@click.option("--infinite", type=click.Choice(["exclude", "clip", "notebook"]), default="exclude",
              show_default=True, help="Feature files only (records keep their own rule). " + INFINITE_HELP)
@click.option("--bootstrap", "n_resamples", type=int, default=1000, show_default=True,
              help="Bootstrap resamples for the CI of the change of Γ′ and Γ.")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
def compare(a: Path, b: Path, out_dir: Path, plot: bool, plot_format: str, distance: str | None,
            backend: str | None, infinite: str, n_resamples: int, confidence: float, seed: int) -> None:
    """Compare k* of A and B on the same samples: two result records (*.result.json; written with
    --per-sample for the paired parts) or two feature files (.npz).

    Prints per-class μ, σ, γ and pattern side by side with the change, the classes whose pattern
    flipped, Γ′ and Γ with the change and a paired bootstrap CI; writes a JSON report and a plot.
    """
    # imported when the command runs (torch), not for --help
    from ldr_plugin.kstar.compare import compare as run_compare
    from ldr_plugin.kstar.compare_report import comparison_table, plot_comparison
    from ldr_plugin.results import atomic_write_text

    options = {k: v for k, v in (("distance", distance), ("backend", backend)) if v is not None}
    cmp = run_compare(a, b, infinite=infinite, n_resamples=n_resamples, seed=seed, confidence=confidence, **options)
    click.echo(comparison_table(cmp))
    base = f"compare__{_stem(a)}__vs__{_stem(b)}"
    report = atomic_write_text(out_dir / f"{base}.json", json.dumps(cmp.to_dict(), indent=1, ensure_ascii=False))
    click.echo(f"report: {report}")
    if plot and cmp.a.kstar is not None and cmp.b.kstar is not None:
        click.echo(f"plot: {plot_comparison(cmp, out_dir / f'{base}.{plot_format}')}")


def _stem(path: Path) -> str:
    return path.name.removesuffix(".result.json").removesuffix(".npz")[:80]


@kstar.command("noise")
@click.argument("features", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sigmas", default="0,0.05,0.1,0.2,0.5,1", show_default=True,
              help="Comma-separated noise scales σ, relative to the features' RMS standard deviation.")
@click.option("--absolute", is_flag=True, help="σ in feature units instead of relative.")
@click.option("--repeats", type=int, default=3, show_default=True, help="Noise draws per σ.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--distance", type=click.Choice(["euclidean", "cosine", "mahalanobis"]), default="euclidean",
              show_default=True, help=DISTANCE_HELP)
@click.option("--backend", type=click.Choice(BACKENDS), default="exact", show_default=True)
@click.option("--out", "--output_dir", "--output-dir", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results/noise"),
              show_default=True, help="Folder for the JSON report and the plot.")
@click.option("--plot-format", type=click.Choice(["png", "svg"]), default="png", show_default=True)
def noise(features: Path, sigmas: str, absolute: bool, repeats: int, seed: int, distance: str, backend: str,
          out_dir: Path, plot_format: str) -> None:
    """Γ′ of FEATURES.npz as Gaussian noise of growing scale is added to the latents."""
    # imported when the command runs (torch), not for --help
    from ldr_plugin.errors import LdrError
    from ldr_plugin.kstar.job import load_features_file
    from ldr_plugin.kstar.noise import kstar_under_noise, plot_noise
    from ldr_plugin.results import atomic_write_text

    try:
        values = [float(s) for s in sigmas.split(",") if s.strip()]
    except ValueError as exc:
        raise LdrError(f"--sigmas must be comma-separated numbers, got {sigmas!r}") from exc
    feats, labels, names = load_features_file(features)
    levels = kstar_under_noise(feats, labels, values, relative=not absolute, repeats=repeats, seed=seed,
                               distance=distance, backend=backend, class_names=names, progress=False)
    click.echo(f"{'sigma':>8} {'noise std':>10} {'Gamma_prime':>12} {'+-':>7} {'Gamma':>8} {'F/O/C':>10} "
               f"{'rho class gamma':>16} {'equal k*':>9}")
    for lv in levels:
        pats = f"{lv.n_fractured:.0f}/{lv.n_overlapped:.0f}/{lv.n_clustered:.0f}"
        click.echo(f"{lv.sigma:>8.3g} {lv.noise_std:>10.3g} {lv.gamma_prime:>12.4f} {lv.gamma_prime_std:>7.4f} "
                   f"{lv.gamma:>8.4f} {pats:>10} {lv.class_gamma_spearman:>16.3f} {100 * lv.equal_kstar:>8.1f}%")
    base = f"noise__{_stem(features)}"
    report = {"features": str(features), "distance": distance, "relative": not absolute, "seed": seed,
              "levels": [lv.to_dict() for lv in levels]}
    click.echo(f"report: {atomic_write_text(out_dir / f'{base}.json', json.dumps(report, indent=1))}")
    click.echo(f"plot: {plot_noise(levels, out_dir / f'{base}.{plot_format}', relative=not absolute)}")
