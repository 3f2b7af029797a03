"""``ldr leaderboard``: build leaderboards from specs, or print DomainBed-compatible tables of a sweep."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from ldr_plugin.cli.console import show_progress
from ldr_plugin.domainbed import names
from ldr_plugin.domainbed.compare import compare_sweeps, comparison_json, render_comparison
from ldr_plugin.domainbed.extras import saved_selected_checkpoints
from ldr_plugin.domainbed.protocols import mixed_protocols
from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables, render_domainbed_text, sweep_names
from ldr_plugin.leaderboard.build import build_leaderboards, default_command
from ldr_plugin.leaderboard.render_json import render_json
from ldr_plugin.leaderboard.render_latex import render_latex
from ldr_plugin.leaderboard.site import site_folders, write_site_index
from ldr_plugin.registry_files import registry_spec, resolve_spec

DEFAULT_SPECS = ("domainbed_sweep", "kstar_vs_accuracy")


def _spec_paths(specs: tuple[str, ...]) -> list[str]:
    """SPEC arguments as files: a path as given, or a spec the package ships, by name (``dg_study``);
    none: the default specs, from the installed package (so this works from any directory)."""
    return [resolve_spec(s) for s in specs] if specs else [str(registry_spec(name)) for name in DEFAULT_SPECS]


def _echo_problems(problems) -> None:
    if not problems:
        return
    skipped = sum(1 for p in problems if p.line is not None)
    click.echo(f"warning: {len(problems)} input problems ({skipped} lines skipped):", err=True)
    for problem in problems[:20]:
        click.echo(f"  {problem.kind}: {problem}", err=True)
    if len(problems) > 20:
        click.echo(f"  ... and {len(problems) - 20} more (listed in README.md)", err=True)


@click.group("leaderboard")
def leaderboard() -> None:
    """Build leaderboards (Markdown, CSV, LaTeX, HTML, plots) from result folders and published numbers."""


@leaderboard.command("build")
@click.argument("specs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--results", "--input_dir", "--input-dir", "-r", "results", multiple=True, type=click.Path(file_okay=False),
              help="A result folder: a DomainBed sweep (<dir>/<run>/results.jsonl) and/or ldr result records. Repeatable.")
@click.option("--out", "--output_dir", "--output-dir", "-o", "out", default="leaderboards", show_default=True, type=click.Path(file_okay=False),
              help="Output folder.")
@click.option("--published-data", default=None, envvar="LDR_PUBLISHED_DATA", type=click.Path(file_okay=False),
              help="Root of published data files (RobustBench model_info, OpenCLIP CSV, DomainBed results.tex).")
@click.option("--latex-document", is_flag=True, help="Write <id>.tex as a standalone document (default: a fragment to \\input).")
@click.option("--quiet", "-q", is_flag=True, hidden=True, help="No progress bars.")
def build(specs: tuple[str, ...], results: tuple[str, ...], out: str, published_data: str | None,
          latex_document: bool, quiet: bool) -> None:
    """Build the leaderboards of SPEC files into --out, with a README holding this exact command.

    A SPEC is a TOML file, or the name of a spec the package ships (`dg_study`, see
    registry/leaderboards/); default: domainbed_sweep and kstar_vs_accuracy."""

    spec_list = _spec_paths(specs)
    command = default_command(spec_list, list(results), out, published_data, latex_document)
    problems: list = []
    paths = build_leaderboards(spec_list, list(results), out, published_root=published_data, command=command,
                               progress=not quiet and show_progress(), problems_out=problems,
                               latex_document=latex_document)
    readme = Path(out) / "README.md"
    _echo_problems(problems)
    click.echo(f"wrote {len(paths)} files to {out}/ (see {readme}); command: {shlex.join(command)}")


@leaderboard.command("collect")
@click.option("--input_dir", "--input-dir", "--results", "-r", "input_dir", required=True,
              type=click.Path(file_okay=False), help="A DomainBed sweep folder.")
@click.option("--order", type=click.Choice(["sorted", "listdir"]), default="sorted", show_default=True,
              help="Run folder order; 'listdir' reproduces DomainBed's float summation order exactly.")
@click.option("--all-datasets", is_flag=True, help="Keep datasets DomainBed does not know (it drops them).")
@click.option("--json", "as_json", is_flag=True, help="Print the tables as JSON (cells: value, err, n, flags).")
@click.option("--latex", is_flag=True, help="Print the tables as LaTeX (booktabs), as DomainBed's --latex does.")
@click.option("--latex-document", is_flag=True, help="With --latex: a standalone document, not a fragment.")
def collect(input_dir: str, order: str, all_datasets: bool, as_json: bool, latex: bool, latex_document: bool) -> None:
    """Print what DomainBed's collect_results prints for a sweep, without DomainBed."""

    sweep = read_sweep(input_dir, order=order, progress=show_progress())
    tables = domainbed_tables(SweepSelection.build(sweep), domainbed_only=not all_datasets)
    if as_json:
        click.echo(render_json(tables, total_records=len(sweep)), nl=False)
    elif latex or latex_document:
        click.echo(render_latex(f"Results of {input_dir}", tables, document=latex_document), nl=False)
    else:
        click.echo(render_domainbed_text(tables, len(sweep)), nl=False)
    _, every = sweep_names(sweep)
    dropped = [d for d in every if d not in names.DATASET_ORDER] if not all_datasets else []
    if dropped:
        kept = "every table above is empty" if len(dropped) == len(every) else "their tables are left out"
        click.echo(f"note: {', '.join(dropped)} {'is' if len(dropped) == 1 else 'are'} not in DomainBed's dataset "
                   f"list, so {kept} (as collect_results does); pass --all-datasets to keep them", err=True)
    mixed = mixed_protocols(sweep)  # DomainBed pools them; stdout stays its text, stderr says so
    if mixed:
        click.echo(f"warning: these tables pool runs of different protocols ({len(mixed)} cases), e.g.:", err=True)
        for line in mixed[:3]:
            click.echo(f"  {line}", err=True)
    if not len(sweep):
        click.echo(f"note: no DomainBed records (<run>/results.jsonl) under {input_dir}", err=True)
    _echo_problems(sweep.problems)


@leaderboard.command("selected-checkpoints")
@click.option("--input_dir", "--input-dir", "--results", "-r", "input_dir", required=True,
              type=click.Path(file_okay=False), help="A DomainBed sweep folder whose runs saved every checkpoint (--save_model_every_checkpoint).")
def selected_checkpoints_cmd(input_dir: str) -> None:
    """Print the model id (domainbed:<run>/model_step<k>.pkl) of every checkpoint a model-selection method
    picks before its run's last step, one per line, for `ldr score`; the final models are the run folders."""
    sweep = read_sweep(input_dir, progress=show_progress())
    saved, missing = saved_selected_checkpoints(SweepSelection.build(sweep))
    missing = sorted(set(missing))
    for path in dict.fromkeys(path for path, _ in saved):  # a checkpoint picked for two envs: listed once
        click.echo(f"domainbed:{path}")
    if missing:
        click.echo(f"warning: {len(missing)} selected checkpoints were not saved (train with "
                   f"--save_model_every_checkpoint), e.g. {missing[0]}", err=True)
    _echo_problems(sweep.problems)


def _sides(folders: tuple[str, ...], results: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """(label, folders) per side: positional folders labelled by their names, LABEL=DIR grouped by label."""
    sides: dict[str, list[str]] = {}
    for folder in folders:
        label = Path(folder).name or folder
        sides.setdefault(label if label not in sides else folder, []).append(folder)
    for item in results:
        label, sep, folder = item.partition("=")
        if not sep or not label or not folder:
            raise click.BadParameter(f"{item!r}: expected LABEL=DIR (e.g. 200=sweeps/200)", param_hint="--results")
        sides.setdefault(label, []).append(folder)
    return list(sides.items())


@leaderboard.command("compare")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False, exists=True))
@click.option("--results", "--input_dir", "-r", "results", multiple=True, metavar="LABEL=DIR",
              help="A labelled sweep folder; repeat (the same label twice joins folders). The first is the baseline.")
@click.option("--selection", type=click.Choice(["iid", "loo", "oracle"]), default="iid", show_default=True,
              help="Model-selection method.")
@click.option("--hparams_grid", "grid", multiple=True, metavar="FIELD",
              help="A --hparams field a grid sets per hparams seed (as a spec's hparams_grid); repeatable. Within "
                   "a sweep the selection method chooses among its values as among hparams seeds.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(folders: tuple[str, ...], results: tuple[str, ...], selection: str, grid: tuple[str, ...],
            as_json: bool) -> None:
    """Compare DomainBed sweeps (A B, or --results 200=DIR --results 5001=DIR): per dataset and
    algorithm each one's accuracy and its difference from the first, paired over trials where the
    trials match. A sweep mixing protocols (steps, hparams, dataset version ...) is refused; the
    protocol differences between the sweeps are printed first."""
    comparison = compare_sweeps(_sides(folders, results), selection, frozenset(grid))
    click.echo(comparison_json(comparison) if as_json else render_comparison(comparison), nl=False)


@leaderboard.command("index")
@click.argument("root", type=click.Path(file_okay=False, exists=True), default="leaderboards")
def index(root: str) -> None:
    """Write ROOT/index.html (default: leaderboards/): one page linking every leaderboard folder under
    ROOT with a one-line summary (its leaderboards' titles) each."""
    path = write_site_index(root)
    click.echo(f"wrote {path} ({len(site_folders(root))} folders)")
