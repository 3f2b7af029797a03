"""One command line: the same flag for the same thing on every subcommand (DomainBed's spellings as
aliases), ``--json`` where results are printed, host-library warnings kept out of normal output,
shell completion that works as the README says."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import click
from click.testing import CliRunner

from ldr_plugin.cli import COMMANDS
from ldr_plugin.cli.hostwarnings import host_warnings_to_log
from ldr_plugin.cli.leaderboard_cmd import leaderboard
from ldr_plugin.cli.ls_cmd import ls
from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables

README = Path(__file__).resolve().parents[1] / "README.md"
SAME_THING = [{"--out", "--output_dir"}, {"--results", "--input_dir"}, {"--trials", "--n_trials"}]


def _commands():
    """(name, click command) of every leaf subcommand."""
    for name, (target, _) in COMMANDS.items():
        module, attr = target.split(":")
        command = getattr(__import__(module, fromlist=[attr]), attr)
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                yield f"{name} {sub_name}", sub
        else:
            yield name, command


def test_every_subcommand_accepts_both_spellings_of_the_same_flag():
    checked = 0
    for name, command in _commands():
        for param in command.params:
            flags = set(getattr(param, "opts", [])) | set(getattr(param, "secondary_opts", []))
            for spellings in SAME_THING:
                if flags & spellings:
                    assert spellings <= flags, f"ldr {name}: {sorted(flags)} lacks one of {sorted(spellings)}"
                    checked += 1
    assert checked >= 8  # demo, kstar, score, train (out, trials), leaderboard build/collect/compare/selected


def test_collect_json_holds_the_numbers_of_the_text_tables(shared_data):
    sweep_dir = shared_data / "domainbed" / "test_sweep_data"
    result = CliRunner().invoke(leaderboard, ["collect", "--results", str(sweep_dir), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    tables = domainbed_tables(SweepSelection.build(read_sweep(str(sweep_dir), progress=False)), domainbed_only=True)
    assert data["total_records"] == 200 and [t["table"] for t in data["tables"]] == [t.table_id for t in tables]
    for got, table in zip(data["tables"], tables):
        for row_json, row in zip(got["rows"], table.rows):
            assert [c["value"] for c in row_json["cells"]] == [c.value for c in row.cells]
            assert [c["n"] for c in row_json["cells"]] == [c.n for c in row.cells]


def test_ls_json():
    rows = json.loads(CliRunner().invoke(ls, ["metrics", "--json"]).stdout)
    assert {r["name"] for r in rows} >= {"kstar", "alignment", "uniformity"} and rows[0]["kind"] == "metrics"


def test_host_library_warnings_go_to_the_debug_log(caplog):
    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.DEBUG, logger="ldr_plugin.hosts"):
        warnings.simplefilter("always")
        with host_warnings_to_log():
            warnings.warn_explicit("`torch.jit.interface` is deprecated", FutureWarning,
                                   "/venv/lib/python3.11/site-packages/torch/jit/_script.py", 1643)
            warnings.warn_explicit("ours", UserWarning, "/home/me/project/mine.py", 3)
    assert "torch.jit._script: FutureWarning: `torch.jit.interface` is deprecated" in caplog.text
    assert [str(w.message) for w in shown] == ["ours"]  # other warnings are shown as usual


def test_shell_completion_works_as_documented():
    text = README.read_text()
    assert "_LDR_COMPLETE=bash_source ldr" in text and "_LDR_COMPLETE=zsh_source ldr" in text
    env = {**os.environ, "_LDR_COMPLETE": "bash_complete", "COMP_WORDS": "ldr leaderboard co", "COMP_CWORD": "2"}
    code = "import sys; from ldr_plugin.cli import run; sys.argv = ['ldr']; run()"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.stdout.split() == ["plain,collect", "plain,compare"], out
