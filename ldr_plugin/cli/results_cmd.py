"""``ldr results check DIR``: validate a results folder written by many processes (exit 1 on any problem)."""

from __future__ import annotations

import json

import click

from ldr_plugin.check import check_results, load_expectation


@click.group("results")
def results() -> None:
    """Inspect result folders."""


@results.command("check")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--expect",
    "expect",
    default=None,
    metavar="FILE",
    help="Cells that must be present: a selection .toml (registry/selections), a .json/.jsonl list of "
    "objects, or a text file 'model_id dataset [split layer metric_family seed]' per line.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(directory: str, expect: str | None, as_json: bool) -> None:
    """Report invalid, partial, duplicate, missing and schema-1 records and unfinished DomainBed runs.

    Exits with status 1 when anything is wrong, 0 when the folder is sound.
    """
    expected = load_expectation(expect) if expect else None
    report = check_results(directory, expect=expected)
    if as_json:
        click.echo(json.dumps({"directory": str(report.directory), "ok": report.ok, "n_valid": report.n_valid,
                               "n_runs_done": report.n_runs_done,
                               "problems": [{"kind": p.kind, "path": p.path, "line": p.line, "message": p.message}
                                            for p in report.problems]}, indent=2))
    else:
        click.echo(report.format())
    if not report.ok:
        # a ClickException (exit 1): ldr's main() does not forward click.exceptions.Exit codes
        raise click.ClickException(f"{len(report.problems)} problem(s) in {directory}")
