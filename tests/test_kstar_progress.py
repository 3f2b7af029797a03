"""Progress of long k* searches: plain lines with the remaining time when stderr is not a terminal."""

from __future__ import annotations

import io
import re

import numpy as np

from ldr_plugin.kstar import kstar_search
from ldr_plugin.kstar.progress import Progress


def test_plain_lines_with_remaining_time_when_not_a_terminal():
    stream = io.StringIO()  # not a tty
    p = Progress(total=100, desc="k* test", enabled=True, every_s=0.0, stream=stream)
    p.set_phase("search")
    for _ in range(4):
        p.update(25)
    p.close()
    lines = stream.getvalue().splitlines()
    assert re.fullmatch(r"k\* test \(search\): 25% done, 0m00s elapsed, ~0m00s left", lines[0])
    assert lines[3].startswith("k* test (search): 100% done") and lines[-1].startswith("k* test: done in")


def test_default_is_quiet_for_short_runs_off_a_terminal():
    stream = io.StringIO()
    p = Progress(total=10, desc="k* quiet", enabled=None, every_s=30.0, stream=stream)
    p.update(10)
    p.close()
    assert stream.getvalue() == ""
    off = io.StringIO()
    q = Progress(total=10, desc="k* off", enabled=False, every_s=0.0, stream=off)
    q.update(10)
    q.close()
    assert off.getvalue() == ""


def test_searches_report_progress(monkeypatch, capsys):
    original = Progress.__init__

    def fast(self, total, desc, enabled=None, *, every_s=30.0, stream=None):
        original(self, total, desc, enabled, every_s=0.0, stream=stream)

    monkeypatch.setattr(Progress, "__init__", fast)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3000, 8)), rng.integers(0, 3, 3000)
    kstar_search(x, y, progress=True)
    kstar_search(x, y, backend="screened", progress=True, check=0)
    err = capsys.readouterr().err
    assert "k* exact: 100% done" in err and "k* screened (same-class counts, class 3/3): 100% done" in err
