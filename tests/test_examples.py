"""The plain-PyTorch examples run as documented (few steps)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_long_tail_example_trains_four_methods():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "long_tail.py"), "--imbalance", "10",
                          "--steps", "15"], capture_output=True, text=True, check=True, timeout=300).stdout
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["erm", "erm_la", "latentdr", "latentdr_lt"]
    for line in lines:
        values = [float(v) for v in line.split()[2::2]]
        assert all(0.0 <= v <= 100.0 for v in values)
