"""``ldr ls``: every registered name, per entry-point group, with the distribution that provides it."""

from __future__ import annotations

import click

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
@click.option("--source", default=None, help="With KIND=models: list the model ids a source enumerates.")
def ls(kind: str | None, source: str | None) -> None:
    """List registered algorithms, datasets, launchers, model sources and metrics.

    With ``ldr ls models --source S``, enumerate the models that source's host lists (RobustBench's zoo, OpenCLIP's pretrained tags).
    """
    if source is not None:
        if kind not in (None, "models"):
            raise click.UsageError("--source only goes with 'ldr ls models'")
        # torch: imported when the command runs, not for --help
        from ldr_plugin.sources import list_model_ids

        for model_id in list_model_ids(source):
            click.echo(model_id)
        return
    rows = list_registered([kind] if kind else None)
    kind_width, width = (max((len(r[i]) for r in rows), default=4) for i in (0, 1))
    for group_kind, name, dist, value in rows:
        click.echo(f"{group_kind:<{kind_width}} {name:<{width}}  {dist:<14} {value}")
