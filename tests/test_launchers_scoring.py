"""``ldr score --launcher local`` writes the same result files as ``--launcher inline``."""

from __future__ import annotations

import json

import pytest

from ldr_plugin.check import check_results
from ldr_plugin.cli import main


def _metrics(folder):
    return {p.name: json.loads(p.read_text())["metrics"] for p in sorted(folder.glob("*.result.json"))}


@pytest.mark.slow
def test_local_launcher_writes_what_inline_writes(tiny_plugin, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LDR_SUBMITIT_FOLDER", str(tmp_path / "logs"))
    monkeypatch.setenv("LDR_LOCAL_WORKERS", "2")
    args = ["score", "tiny:net1", "tiny:net2", "tiny:net3", "--dataset", "digits", "--n-per-class", "6"]
    assert main([*args, "--out", str(tmp_path / "inline"), "--launcher", "inline"]) == 0
    assert main([*args, "--out", str(tmp_path / "local"), "--launcher", "local"]) == 0
    inline, local = _metrics(tmp_path / "inline"), _metrics(tmp_path / "local")
    assert inline == local and len(inline) >= 3  # one record per model and registered metric family
    assert check_results(tmp_path / "local").ok
    assert "3/3 cells scored" in capsys.readouterr().out
    # a second local run finds every record and rewrites nothing
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "local").glob("*.result.json")}
    assert main([*args, "--out", str(tmp_path / "local"), "--launcher", "local"]) == 0
    assert before == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "local").glob("*.result.json")}
