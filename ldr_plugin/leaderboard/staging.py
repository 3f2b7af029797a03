"""A build's output folder, filled as one step: files are made in a hidden sibling, then moved in.

A build that is killed while it computes (nearly all of its time) leaves the output folder as it
was, and its staging folder ``.<out>.building-<host>-<pid>`` is removed by the next build. Moving
the finished files in takes milliseconds; during it the folder holds a marker file,
``.ldr-build-incomplete``, so a kill in that window leaves a folder that says it is mixed (readers
and the next build see the marker; the next build replaces every file and removes it). Files of
the folder that the build does not make (a hand-written STUDY.md, other builds' subfolders) are
never touched.

>>> with staged_output("/tmp/ldr-board") as stage:   # doctest: +SKIP
...     (stage / "t.md").write_text("...")          # written to /tmp/.ldr-board.building-*/t.md
...                                                   # then moved to /tmp/ldr-board/t.md
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from ldr_plugin.results.io import atomic_write_text

LOG = logging.getLogger(__name__)
MARKER = ".ldr-build-incomplete"
LAST = ("index.html", "README.md")  # moved in last: a folder whose README is new has every table new


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_stages(out: Path) -> None:
    """Staging folders of builds on this host whose process is gone (killed builds)."""
    host = socket.gethostname()
    for stage in out.parent.glob(f".{out.name}.building-*"):
        stage_host, _, pid = stage.name.rpartition("-")
        if stage_host.endswith(f".building-{host}") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stage, ignore_errors=True)


def interrupted(out: str | os.PathLike) -> bool:
    """True when ``out`` holds the marker of a build killed while moving its files in (a mixed folder)."""
    return (Path(out) / MARKER).exists()


def _move_in(stage: Path, out: Path) -> None:
    files = sorted((p for p in stage.rglob("*") if p.is_file() or p.is_symlink()),
                   key=lambda p: (p.relative_to(stage).as_posix() in LAST, p.relative_to(stage).as_posix()))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MARKER, f"build by pid {os.getpid()} on {socket.gethostname()} is moving its files "
                      "in; if this file stays, that build was interrupted: the folder mixes two builds, rebuild it\n")
    for path in files:
        target = out / path.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    (out / MARKER).unlink()


@contextlib.contextmanager
def staged_output(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out_dir``; on success move its files into ``out_dir``."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_stages(out)
    if interrupted(out):
        LOG.warning("%s: an earlier build was interrupted while moving its files in; every file is rebuilt", out)
    stage = out.parent / f".{out.name}.building-{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        _move_in(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
