"""The ``ldr`` command: a thin click group over importable functions.

Subcommands are imported only when invoked (``ldr --help`` imports no torch), and every
:class:`~ldr_plugin.errors.LdrError` becomes a one-line message and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from ldr_plugin import __version__
from ldr_plugin.errors import LdrError

# name -> ("module:attribute" of a click command, one-line help); imported lazily.
COMMANDS = {
    "ls": ("ldr_plugin.cli.ls_cmd:ls", "List registered algorithms, datasets, launchers, model sources, metrics."),
    "kstar": ("ldr_plugin.cli.kstar_cmd:kstar", "k* metrics of a features file (.npz); compare two models; k* under noise."),
    "score": ("ldr_plugin.cli.score_cmd:score", "Score registered models on a dataset with every metric."),
    "train": ("ldr_plugin.cli.train_cmd:train_command", "Train a DomainBed-interface algorithm (built-in loop)."),
    "leaderboard": ("ldr_plugin.cli.leaderboard_cmd:leaderboard", "Build leaderboards from result folders."),
    "results": ("ldr_plugin.cli.results_cmd:results", "Check result folders written by many processes."),
    "demo": ("ldr_plugin.cli.demo_cmd:demo", "The main job, end to end, on embedded data."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def format_commands(self, ctx, formatter):
        # list names with their static help, without importing any command module
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in sorted(COMMANDS)])

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise click.ClickException(f"command '{name}' is unavailable: {exc}") from exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ldr")
def cli():
    """ldr-plugin: LatentDR for DomainBed, k* metrics for registered models, leaderboards."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; callable from Python (``main(["ls"])``). Returns the exit code."""
    try:
        code = cli.main(args=argv, prog_name="ldr", standalone_mode=False)
    except LdrError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    # without standalone mode, click returns ctx.exit(code)'s code (and a command's return value)
    return code if isinstance(code, int) else 0


def run() -> None:
    sys.exit(main())
