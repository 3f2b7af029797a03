"""``ldr ls``: every registered name, per entry-point group, with the distribution that provides it."""

from __future__ import annotations

import json

import click

from ldr_plugin.cli.hostwarnings import quiet_host_warnings
from ldr_plugin.plugins import GROUPS, plugin_group


def list_registered(kinds: list[str] | None = None) -> list[tuple[str, str, str, str]]:
    """Rows (kind, name, distribution, value) for the given kinds (default: all groups)."""
    rows = []
    for kind in kinds or list(GROUPS):
        for name, entry in sorted(plugin_group(kind).entries().items()):
            rows.append((kind, name, entry.distribution, entry.value))
    return rows


@click.command("ls")
@click.argument("kind", required=False, type=click.Choice(sorted(GROUPS)))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of objects, or of model ids with --source).")
@click.option("--source", default=None, help="With KIND=models: list the model ids a source enumerates.")
@quiet_host_warnings
def ls(kind: str | None, source: str | None, as_json: bool) -> None:
    """List registered algorithms, datasets, launchers, model sources and metrics.

    With ``ldr ls models --source S``, enumerate the models that source's host lists (RobustBench's zoo, OpenCLIP's pretrained tags).
    """
    if source is not None:
        if kind not in (None, "models"):
            raise click.UsageError("--source only goes with 'ldr ls models'")
        # torch: imported when the command runs, not for --help
        from ldr_plugin.sources import list_model_ids

        ids = list(list_model_ids(source))
        click.echo(json.dumps(ids, indent=2) if as_json else "\n".join(ids))
        return
    rows = list_registered([kind] if kind else None)
    if as_json:
        keys = ("kind", "name", "distribution", "value")
        click.echo(json.dumps([dict(zip(keys, row)) for row in rows], indent=2))
        return
    kind_width, width = (max((len(r[i]) for r in rows), default=4) for i in (0, 1))
    for group_kind, name, dist, value in rows:
        click.echo(f"{group_kind:<{kind_width}} {name:<{width}}  {dist:<14} {value}")
