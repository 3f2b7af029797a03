"""The ``ldr`` command: a thin click group over importable functions.

Subcommands are imported only when invoked (``ldr --help`` imports no torch). Errors stop at this
boundary: an :class:`~ldr_plugin.errors.LdrError` (bad input) becomes one line and exit code 2,
any other exception one line naming the command, its input and the exception, exit code 1; ``-v``
or ``LDR_DEBUG=1`` adds the traceback.

``-v`` / ``-q`` set the level of the ``ldr_plugin`` logger once, for every subcommand to read::

    logging.getLogger("ldr_plugin").getEffectiveLevel()  # INFO by default, DEBUG with -v, WARNING with -q
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
import traceback

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

LOGGER = "ldr_plugin"
# OSError numbers that are the machine's state, not a bug: reported as one line without a hint
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.ENOENT,
                       errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EMFILE}


class _ClickEchoHandler(logging.Handler):
    """Log records as plain lines on the current stderr (click's, so CliRunner captures them)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def configure_logging(verbosity: int) -> int:
    """Set the ``ldr_plugin`` logger's level from ``-v`` (+1 each) / ``-q`` (-1 each); one handler ever.

    0 is INFO (the commands' normal output), 1 or more DEBUG, -1 WARNING, -2 or less ERROR.
    Returns the level. Example: ``configure_logging(-1) == logging.WARNING``.
    """
    level = {1: logging.DEBUG, 0: logging.INFO, -1: logging.WARNING}.get(
        max(-2, min(1, verbosity)), logging.ERROR)
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    if not any(isinstance(h, _ClickEchoHandler) for h in logger.handlers):
        handler = _ClickEchoHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    return level


def debug_enabled() -> bool:
    """Tracebacks wanted: ``LDR_DEBUG`` set to a non-empty value other than 0, or ``-v`` given."""
    return os.environ.get("LDR_DEBUG", "") not in ("", "0") or logging.getLogger(LOGGER).level == logging.DEBUG


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
@click.option("-v", "--verbose", count=True, help="More output (debug messages, tracebacks on errors).")
@click.option("-q", "--quiet", count=True, help="Less output (-q: warnings and the final summary; -qq: errors).")
def cli(verbose: int, quiet: int):
    """ldr-plugin: LatentDR for DomainBed, k* metrics for registered models, leaderboards."""
    configure_logging(verbose - quiet)


def _command_line(argv: list[str]) -> str:
    """``ldr <command> <first arguments>``, shortened to stay one readable line."""
    text = " ".join(["ldr", *argv])
    return text if len(text) <= 160 else text[:157] + "..."


def _describe(exc: BaseException) -> str:
    """One line: the exception's type and message (an OSError's file named)."""
    if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:
        names = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{names + ': ' if names else ''}{exc.strerror or exc}"
    message = " ".join(str(exc).split())
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _report(args: list[str], exc: BaseException) -> int:
    """Print an unexpected exception as one line (the traceback too when debugging); exit code 1."""
    if debug_enabled():
        traceback.print_exception(exc)
    hint = "" if debug_enabled() else " (ldr -v or LDR_DEBUG=1 for the traceback)"
    click.echo(f"error: {_command_line(args)}: {_describe(exc)}{hint}", err=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; callable from Python (``main(["ls"])``). Returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = cli.main(args=args, prog_name="ldr", standalone_mode=False)
    except LdrError as exc:
        if debug_enabled():
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, EOFError):  # click turns EOFError (a truncated file) into Abort
            return _report(args, exc.__cause__)
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the boundary: one line instead of a traceback
        return _report(args, exc)
    # without standalone mode, click returns ctx.exit(code)'s code (and a command's return value)
    return code if isinstance(code, int) else 0


def run() -> None:
    sys.exit(main())
