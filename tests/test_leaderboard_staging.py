"""Issue 20: a leaderboard build fills its folder as one step, so a killed build leaves no mixed folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard.build import build_leaderboards
from ldr_plugin.leaderboard.staging import MARKER, interrupted, staged_output

REGISTRY = Path(__file__).resolve().parents[1] / "registry" / "leaderboards"
SPECS = [REGISTRY / "published_domainbed.toml", REGISTRY / "published_openclip.toml"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_build_that_fails_midway_leaves_the_folder_as_it_was(shared_data, tmp_path, monkeypatch):
    out = tmp_path / "boards"
    build_leaderboards(SPECS[:1], [], out, published_root=shared_data, progress=False)
    (out / "STUDY.md").write_text("hand-written, not the build's")
    before = _snapshot(out)

    import ldr_plugin.leaderboard.build as build_module

    real = build_module.render_html

    def failing(*args, **kwargs):  # every table of the second build is written by now
        real(*args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build_module, "render_html", failing)
    with pytest.raises(OSError):
        build_leaderboards(SPECS, [], out, published_root=shared_data, progress=False)
    assert _snapshot(out) == before
    assert not list(tmp_path.glob(".boards.building-*"))
    monkeypatch.setattr(build_module, "render_html", real)
    paths = build_leaderboards(SPECS, [], out, published_root=shared_data, progress=False)
    after = _snapshot(out)
    assert after["STUDY.md"] == before["STUDY.md"] and "openclip.md" in after and MARKER not in after
    assert all(p.parent == out for p in paths) and all(p.is_file() for p in paths)


def test_stale_staging_folders_of_dead_builds_are_removed_and_a_marked_folder_is_rebuilt(shared_data, tmp_path,
                                                                                          caplog, monkeypatch):
    import logging
    import socket

    monkeypatch.setattr(logging.getLogger("ldr_plugin"), "propagate", True)  # the CLI's handler aside

    out = tmp_path / "boards"
    out.mkdir()
    stale = tmp_path / f".boards.building-{socket.gethostname()}-{_dead_pid()}"
    (stale / "plots").mkdir(parents=True)
    (out / MARKER).write_text("build by pid 1 ...")
    (out / "domainbed_2020.md").write_text("half of an older build")
    assert interrupted(out)
    with caplog.at_level("WARNING", logger="ldr_plugin"):
        build_leaderboards(SPECS[:1], [], out, published_root=shared_data, progress=False)
    assert not stale.exists() and not interrupted(out)
    assert "interrupted" in caplog.text
    assert (out / "domainbed_2020.md").read_text() != "half of an older build"


def test_a_live_builds_staging_folder_is_left_alone(tmp_path):
    import socket

    live = tmp_path / f".boards.building-{socket.gethostname()}-{os.getppid()}"
    live.mkdir()
    with staged_output(tmp_path / "boards") as stage:
        (stage / "a.md").write_text("a")
    assert live.exists() and (tmp_path / "boards" / "a.md").read_text() == "a"


def test_bad_specs_fail_before_any_staging(tmp_path):
    (tmp_path / "bad.toml").write_text('[leaderboard]\nid = "x"\ntitle = "t"\nkind = "domainbed"\nlimit = -1\n')
    with pytest.raises(LdrError):
        build_leaderboards([tmp_path / "bad.toml"], [], tmp_path / "boards", progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "bad.toml"]
