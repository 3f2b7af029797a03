"""The CLI root: every escaping exception is one line and an exit code; -v / -q set one logger level."""

from __future__ import annotations

import errno
import logging

import click
import pytest

from ldr_plugin.cli import COMMANDS, main
from ldr_plugin.errors import LdrError

RAISE = {}


@click.command("boom")
@click.argument("what")
def boom(what: str) -> None:
    """A command that raises what the test planted."""
    logging.getLogger("ldr_plugin.test").info("info line")
    logging.getLogger("ldr_plugin.test").warning("warning line")
    raise RAISE["exc"]


@pytest.fixture
def boom_command(monkeypatch):
    monkeypatch.setitem(COMMANDS, "boom", (f"{__name__}:boom", "raises"))
    monkeypatch.delenv("LDR_DEBUG", raising=False)
    return RAISE


@pytest.mark.parametrize("exc, code, expected", [
    (RuntimeError("matrix is\nsingular"), 1, "error: ldr boom input.npz: RuntimeError: matrix is singular"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/out/r.json"), 1,
     "error: ldr boom input.npz: /data/out/r.json: No space left on device"),
    (EOFError("No data left in file"), 1, "error: ldr boom input.npz: EOFError: No data left in file"),
    (LdrError("input.npz: no array 'labels'"), 2, "error: input.npz: no array 'labels'"),
])
def test_an_escaping_exception_is_one_line_naming_command_input_and_exception(boom_command, capsys, exc, code,
                                                                                expected):
    boom_command["exc"] = exc
    assert main(["boom", "input.npz"]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(expected), err


@pytest.mark.parametrize("how", ["env", "flag"])
def test_ldr_debug_or_verbose_shows_the_traceback(boom_command, capsys, monkeypatch, how):
    boom_command["exc"] = ZeroDivisionError("division by zero")
    if how == "env":
        monkeypatch.setenv("LDR_DEBUG", "1")
    assert main((["-v"] if how == "flag" else []) + ["boom", "x"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "raise RAISE" in err
    assert err.strip().splitlines()[-1].startswith("error: ldr")


@pytest.mark.parametrize("flags, level, shown", [
    ([], logging.INFO, {"info line", "warning line"}),
    (["-v"], logging.DEBUG, {"info line", "warning line"}),
    (["-q"], logging.WARNING, {"warning line"}),
    (["-qq"], logging.ERROR, set()),
])
def test_verbose_and_quiet_set_the_package_logger_level(boom_command, capsys, flags, level, shown):
    boom_command["exc"] = LdrError("stop")
    main([*flags, "boom", "x"])
    assert logging.getLogger("ldr_plugin").getEffectiveLevel() == level
    assert logging.getLogger("ldr_plugin.kstar").getEffectiveLevel() == level
    err = capsys.readouterr().err
    assert {line for line in ("info line", "warning line") if line in err} == shown


def test_a_read_only_output_folder_is_one_line(tmp_path, capsys, clustered_features):
    import numpy as np

    feats, labels = clustered_features(n_per_class=10, n_classes=2, dim=4)
    np.savez(tmp_path / "f.npz", features=feats, labels=labels)
    code = main(["kstar", str(tmp_path / "f.npz"), "--out", "/proc/ldr-no-such/out", "--no-plot"])
    err = capsys.readouterr().err
    assert code in (1, 2) and "Traceback" not in err
    assert "/proc/ldr-no-such" in err and len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1
