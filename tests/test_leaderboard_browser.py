"""The HTML page in a real headless browser (Debian's chromium), at desktop (1400 px) and phone (390 px)
widths: tables and plots render, nothing is wider than a phone's screen, and clicking a column header
sorts the rows (a click dispatched in the page by a harness copy of it; chromium's --dump-dom then
shows the DOM after the page's own sort handler ran). Headless chromium's window is at least 500 px
wide, so the phone width is an iframe of 390 px (whose DOM the outer page copies out). Screenshots
are kept in the test's tmp folder (paths printed; ``pytest -s`` shows them).

The interactive scatter (a page with more than 200 points) is driven over the DevTools protocol
(tests/cdp.py: a real mouse move that chromium hit-tests, at true 390 px through device metrics),
since --dump-dom cannot hover."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ldr_plugin.leaderboard.build import build_leaderboards

REGISTRY = Path(__file__).resolve().parents[1] / "registry" / "leaderboards"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
TABLE = "VLCS__iid"  # ours and DomainBed's published rows, in DomainBed's order (not sorted by Avg)

HARNESS = """<script>
window.addEventListener('load', function () {
  var table = document.getElementById('%s');
  var th = table.tHead.rows[0].cells[%d];
  th.click();
  document.body.setAttribute('data-scroll-width', document.documentElement.scrollWidth);
  document.body.setAttribute('data-inner-width', window.innerWidth);
  document.body.setAttribute('data-sorted', th.getAttribute('aria-sort'));
});
</script></body>"""


PHONE = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="click.html" style="width:%dpx;height:1500px;border:0"></iframe>
<script>
var f = document.getElementById('f');
f.addEventListener('load', function () { setTimeout(function () {
  var pre = document.createElement('pre');
  pre.id = 'inner';
  pre.textContent = f.contentDocument.documentElement.outerHTML;
  document.body.appendChild(pre);
}, 200); });
</script></body></html>"""


def _chromium(page: Path, width: int, profile: Path, shot: Path) -> str:
    """The DOM of ``page`` (click.html) after load at ``width`` px (narrow widths through an iframe)."""
    window = max(width, 500)
    if width < 500:
        outer = page.with_name("phone.html")
        outer.write_text(PHONE % width)
        page = outer
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--allow-file-access-from-files", f"--window-size={window},1600", "--virtual-time-budget=3000",
         f"--screenshot={shot}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    if width < 500:
        inner = re.search(r'<pre id="inner">(.*)</pre>', proc.stdout, re.DOTALL)
        assert inner, "the iframe's DOM was not copied out"
        return html.unescape(inner[1])
    return proc.stdout


def _column_values(dom: str, table_id: str, column: int) -> list[str]:
    body = dom.split(f'id="{table_id}"', 1)[1].split("</tbody>", 1)[0]
    return [re.findall(r'<td data-v="([^"]*)"', row)[column - 1] for row in body.split("<tr")[2:]]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
@pytest.mark.parametrize("width", [1400, 390])
def test_html_page_renders_sorts_and_fits(shared_data, tmp_path, width):
    out = tmp_path / "boards"
    build_leaderboards([REGISTRY / "domainbed_sweep.toml"], [shared_data / "domainbed" / "test_sweep_data"], out,
                       published_root=shared_data, progress=False)
    page = (out / "index.html").read_text()
    assert '<meta name="viewport"' in page and "<script src" not in page  # offline: no external script
    avg = 5  # VLCS: C, L, S, V, Avg
    before = _column_values(page, TABLE, avg)
    harness = out / "click.html"
    harness.write_text(page.replace("</body>", HARNESS % (TABLE, avg), 1))
    shot = tmp_path / f"page_{width}.png"
    dom = _chromium(harness, width, tmp_path / "profile", shot)
    print(f"screenshot at {width} px: {shot}")
    # the page: six DomainBed tables (VLCS + Averages per selection method), ours and published rows, plots
    assert dom.count('<table class="board" id="') == 6
    assert '<tr class="reproduced"><td>ERM</td>' in dom and 'class="published"' in dom
    assert "98.0 ± 0.2" in dom  # the golden number of VLCS / C / training-domain validation
    assert dom.count('<img class="plot" src="plots/') == 3
    # the click sorted the Avg column, largest first, missing cells last
    assert 'data-sorted="descending"' in dom
    after = _column_values(dom, TABLE, avg)
    numbers = [float(v) for v in after if v]
    assert sorted(before) == sorted(after) and after != before
    assert numbers == sorted(numbers, reverse=True) and after[len(numbers):] == [""] * (len(after) - len(numbers))
    # nothing sticks out sideways: wide tables scroll in their own box
    scroll_width = int(re.search(r'data-scroll-width="(\d+)"', dom)[1])
    inner = int(re.search(r'data-inner-width="(\d+)"', dom)[1])
    assert inner == width and scroll_width <= width, f"page is {scroll_width} px wide in a {inner} px window"
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[1] == max(width, 500) and pixels.shape[0] >= 1000
    flat = pixels.reshape(-1, pixels.shape[-1])
    assert len(np.unique(flat[::97], axis=0)) > 10  # text, rules, shaded rows: not a blank page
    assert pixels.std() > 0.05


TOPMOST = """(function () {
  var fig = document.querySelector('figure.iscatter');
  fig.scrollIntoView({block: 'center'});
  var found = [];
  Array.prototype.forEach.call(fig.querySelectorAll('circle[data-label]'), function (c) {
    var r = c.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
    if (document.elementFromPoint(x, y) === c) found.push([c.getAttribute('data-label'), x, y]);
  });
  return found;
})()"""

HOVERED = """(function () {
  var tip = document.querySelector('figure.iscatter .tip'), on = document.querySelectorAll('circle.on');
  var r = tip.getBoundingClientRect();
  return {hidden: tip.hidden, text: tip.textContent, on: Array.prototype.map.call(on, function (c) {
    return c.getAttribute('data-label'); }), left: r.left, right: r.right};
})()"""


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
@pytest.mark.parametrize("width", [1400, 390])
def test_interactive_scatter_shows_the_run_under_the_mouse(tmp_path, width):
    """A real mouse move (DevTools protocol Input.dispatchMouseEvent: chromium hit-tests it) over a
    point of a 260-point scatter shows that run's label and values, read independently from the CSV."""
    from cdp import Chromium
    from scatter_pages import X_COLUMN, Y_COLUMN, csv_points, scored_runs

    spec = scored_runs(tmp_path, 260)
    out = tmp_path / "out"
    build_leaderboards([spec], [tmp_path / "records"], out, progress=False)
    expected = {label: (x, y) for label, x, y in csv_points(out / "kh.csv")}
    with Chromium(CHROMIUM, tmp_path / "profile") as browser:
        tab = browser.open((out / "index.html").as_uri(), width)
        assert tab.eval("window.innerWidth") == width
        assert tab.eval("document.documentElement.scrollWidth") <= width  # nothing sticks out on a phone
        # the script ran: handlers attached, every point labelled (title moved to aria-label)
        assert tab.eval("document.querySelector('figure.iscatter').getAttribute('data-ready')") == "true"
        labels = tab.eval("Array.prototype.map.call(document.querySelectorAll('circle[data-label]'), "
                          "function (c) { return [c.getAttribute('data-label'), c.getAttribute('aria-label'), "
                          "c.querySelector('title') === null]; })")
        assert sorted(label for label, _, _ in labels) == sorted(expected)
        for label, aria, no_title in labels:
            x, y = expected[label]
            assert no_title and aria == f"{label}: {X_COLUMN} {x:.2f}, {Y_COLUMN} {y:.3f}"
        assert tab.eval(HOVERED)["hidden"] is True
        topmost = tab.eval(TOPMOST)  # points not covered by another (the mouse can reach them)
        assert len(topmost) > 100
        for label, x, y in (topmost[0], topmost[len(topmost) // 2], topmost[-1]):
            tab.mouse_move(x, y)
            shown = tab.eval(HOVERED)
            vx, vy = expected[label]
            assert shown["hidden"] is False and shown["on"] == [label]
            assert shown["text"] == f"{label} {X_COLUMN}: {vx:.2f}, {Y_COLUMN}: {vy:.3f}"
            assert 0 <= shown["left"] and shown["right"] <= width  # the box stays on screen
        shot = tab.screenshot(tmp_path / f"scatter_{width}.png")
        print(f"screenshot at {width} px (hovering {label}): {shot}")
        tab.mouse_move(1, 1)  # off the points: the box goes away
        assert tab.eval(HOVERED)["hidden"] is True and tab.eval(HOVERED)["on"] == []
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[1] == width and pixels.std() > 0.05
