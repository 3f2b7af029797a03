"""Issue 20: long work speaks when stderr is not a terminal, and a long exact search points at the
screened backend with its estimated time."""

from __future__ import annotations

import itertools
import types

import numpy as np

from ldr_plugin.cli import main
from ldr_plugin.kstar import job
from ldr_plugin.kstar import progress as kstar_progress
from ldr_plugin.kstar.api import kstar_summary


def _slow_clock(monkeypatch):
    """k*'s progress counter sees 2 s pass between any two readings of its clock."""
    ticks = itertools.count(0.0, 2.0)
    monkeypatch.setattr(kstar_progress, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))


def test_exact_search_prints_plain_progress_lines_off_a_terminal(clustered_features, capsys, monkeypatch):
    monkeypatch.setenv("LDR_PROGRESS_SECONDS", "1")
    _slow_clock(monkeypatch)
    feats, labels = clustered_features(n_per_class=40, n_classes=4, dim=8)
    kstar_summary(feats, labels, block_size=8)  # progress=None: the default
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("k* exact")]
    assert len(lines) >= 3 and all("% done" in line and "elapsed" in line and "left" in line for line in lines[:-1])
    assert lines[-2].startswith("k* exact: 100% done") and lines[-1].startswith("k* exact: done in")
    assert "\r" not in err


def test_quiet_silences_progress_and_the_summary_still_prints(tmp_path, clustered_features, capsys, monkeypatch):
    monkeypatch.setenv("LDR_PROGRESS_SECONDS", "1")
    _slow_clock(monkeypatch)
    feats, labels = clustered_features(n_per_class=20, n_classes=2, dim=4)
    np.savez(tmp_path / "f.npz", features=feats, labels=labels)
    assert main(["-q", "kstar", str(tmp_path / "f.npz"), "--out", str(tmp_path / "o"), "--no-plot"]) == 0
    out = capsys.readouterr()
    assert "k* exact" not in out.err and "record:" in out.out
    assert main(["kstar", str(tmp_path / "f.npz"), "--out", str(tmp_path / "o2"), "--no-plot"]) == 0
    assert "k* exact: 100% done" in capsys.readouterr().err


def test_a_long_exact_search_suggests_the_screened_backend_with_its_estimate(tmp_path, clustered_features, capsys,
                                                                             monkeypatch):
    feats, labels = clustered_features(n_per_class=20, n_classes=2, dim=4)
    np.savez(tmp_path / "f.npz", features=feats, labels=labels)
    monkeypatch.setattr(job, "MIN_WORK_TO_ESTIMATE", 0)
    monkeypatch.setattr(job, "estimate_exact_seconds", lambda n, d, dtype: 15 * 60.0)
    assert main(["kstar", str(tmp_path / "f.npz"), "--out", str(tmp_path / "o"), "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert "exact k* of 40 samples x 4 dimensions will take about 15 min here; --backend screened" in err
    assert main(["kstar", str(tmp_path / "f.npz"), "--out", str(tmp_path / "o2"), "--no-plot",
                 "--backend", "screened"]) == 0
    assert "will take about" not in capsys.readouterr().err


def test_the_estimate_grows_with_n_squared_and_d():
    small, large = job.estimate_exact_seconds(4096, 64), job.estimate_exact_seconds(40960, 64)
    assert 30 < large / small < 300  # 100x the work, measured with timer noise
    assert job.estimate_exact_seconds(300_000, 512) > job.estimate_exact_seconds(300_000, 16)
