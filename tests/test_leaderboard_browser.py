"""The HTML page in a real headless browser (Debian's chromium): tables and plot images render."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ldr_plugin.leaderboard.build import build_leaderboards

REGISTRY = Path(__file__).resolve().parents[1] / "registry" / "leaderboards"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
def test_html_page_renders_tables_and_plots(shared_data, tmp_path):
    out = tmp_path / "boards"
    build_leaderboards([REGISTRY / "domainbed_sweep.toml"], [shared_data / "domainbed" / "test_sweep_data"], out,
                       published_root=shared_data, progress=False)
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1280,1600", f"--screenshot={shot}", "--dump-dom", (out / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert dom.count('<table id="') == 6  # VLCS + Averages for each of the three selection methods
    assert '<tr class="reproduced"><td>ERM</td>' in dom and 'class="published"' in dom
    assert "98.0 ± 0.2" in dom  # the golden number of VLCS / C / training-domain validation
    assert dom.count('<img class="plot" src="plots/') == 3
    for name in ("domainbed_sweep__averages__iid", "domainbed_sweep__averages__loo"):
        assert (out / "plots" / f"{name}.svg").is_file()
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    flat = pixels.reshape(-1, pixels.shape[-1])
    assert len(np.unique(flat[::97], axis=0)) > 10  # text, rules, shaded rows: not a blank page
    assert pixels.std() > 0.05
