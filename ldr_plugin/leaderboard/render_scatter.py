"""The HTML page's interactive scatter: an inline SVG drawn from a plot's points, for scatters of
more than ``INTERACTIVE_POINTS`` points (where the static plot's points overlap and cannot be
labelled). Hovering a point (or tapping it on a phone) shows its row label and its x and y values
and rings it; the page keeps a link to the static plot, which Markdown and LaTeX show.

No library and no network: every point is a ``<circle>`` carrying its label and values
(``data-label``, ``data-x``, ``data-y``, and a ``<title>``, so the values stay readable without the
script: a browser shows a title on hover), and a few lines of inline script (``SCRIPT``) show one
tooltip box. Axis ticks come from matplotlib's tick locator, colours from matplotlib's cycle (the
static plot's).

>>> from ldr_plugin.leaderboard.tables import Scatter
>>> s = Scatter("plots/a.svg", "t", "acc (%)", "Γ′", (("run 1", 80.0, 0.5, ""), ("run <2>", 90.0, -0.5, "")))
>>> svg = str(scatter_html(s))
>>> svg.count("<circle"), 'data-label="run &lt;2&gt;"' in svg
(2, True)
"""

from __future__ import annotations

from markupsafe import Markup, escape

from ldr_plugin.leaderboard.tables import Scatter

INTERACTIVE_POINTS = 200  # a scatter with more points than this gets the interactive version

WIDTH, HEIGHT = 640, 420
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 12, 52  # margins of the plot area inside the view box

SCRIPT = """
(function () {
  Array.prototype.forEach.call(document.querySelectorAll('figure.iscatter'), function (fig) {
    var svg = fig.querySelector('svg'), tip = fig.querySelector('.tip'), on = null;
    Array.prototype.forEach.call(svg.querySelectorAll('circle[data-label]'), function (c) {
      var t = c.querySelector('title');  // the tooltip box replaces the browser's own title popup
      if (t) { c.setAttribute('aria-label', t.textContent); c.removeChild(t); }
    });
    function show(c) {
      if (on) on.classList.remove('on');
      on = c;
      c.classList.add('on');
      tip.textContent = '';
      var b = document.createElement('strong');
      b.textContent = c.getAttribute('data-label');
      tip.appendChild(b);
      tip.appendChild(document.createTextNode(' ' + svg.getAttribute('data-x-label') + ': ' +
        c.getAttribute('data-xt') + ', ' + svg.getAttribute('data-y-label') + ': ' + c.getAttribute('data-yt')));
      tip.hidden = false;
      var f = fig.getBoundingClientRect(), p = c.getBoundingClientRect();
      var left = Math.min(p.right - f.left + 6, f.width - tip.offsetWidth);
      tip.style.left = Math.max(0, left) + 'px';
      tip.style.top = Math.max(0, p.top - f.top - tip.offsetHeight - 6) + 'px';
    }
    function hide() { if (on) on.classList.remove('on'); on = null; tip.hidden = true; }
    svg.addEventListener('mouseover', function (e) { if (e.target.hasAttribute('data-label')) show(e.target); });
    svg.addEventListener('mouseout', function (e) { if (e.target.hasAttribute('data-label')) hide(); });
    svg.addEventListener('click', function (e) { if (e.target.hasAttribute('data-label')) show(e.target); else hide(); });
    fig.setAttribute('data-ready', 'true');
  });
})();
"""

CSS = """
figure.iscatter { position: relative; margin: 0.5em 0; max-width: 44em; }
figure.iscatter svg { width: 100%; height: auto; border: 1px solid #ddd; background: #fff; }
figure.iscatter circle { fill-opacity: 0.6; }
figure.iscatter circle.on { fill-opacity: 1; stroke: #000; stroke-width: 2; r: 6; }
figure.iscatter .tip { position: absolute; background: #fffbe6; border: 1px solid #999; padding: 0.2em 0.4em;
  font-size: 0.8em; max-width: 24em; pointer-events: none; box-shadow: 0 1px 3px #0003; }
figure.iscatter figcaption { font-size: 0.85em; color: #444; }
.key { display: inline-block; width: 0.7em; height: 0.7em; border-radius: 50%; margin: 0 0.2em 0 0.6em; }
"""


def _ticks(lo: float, hi: float) -> list[float]:
    """Round tick values inside [lo, hi] (matplotlib's locator, as the static plot's axes)."""
    from matplotlib.ticker import MaxNLocator

    return [float(t) for t in MaxNLocator(6).tick_values(lo, hi) if lo <= t <= hi]


def _span(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo) * 0.05, 0.5)
    return lo - pad, hi + pad


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def scatter_html(scatter: Scatter, x_decimals: int = 2, y_decimals: int = 3) -> Markup:
    """The figure (inline SVG, tooltip box, legend, link to the static plot) of one scatter."""
    from matplotlib.colors import to_hex

    xs, ys = [p[1] for p in scatter.points], [p[2] for p in scatter.points]
    (x0, x1), (y0, y1) = _span(xs), _span(ys)
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return round(LEFT + (x - x0) / (x1 - x0) * w, 1)

    def py(y: float) -> float:
        return round(TOP + (y1 - y) / (y1 - y0) * h, 1)

    groups = sorted({p[3] for p in scatter.points})
    colour = {g: to_hex(f"C{i % 10}") if scatter.grouped else to_hex("tab:blue") for i, g in enumerate(groups)}
    xl, yl = escape(scatter.x_label), escape(scatter.y_label)
    out = [(f'<figure class="iscatter"><svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" data-x-label="{xl}" '
            f'data-y-label="{yl}" aria-label="{escape(scatter.title)}: {yl} against {xl}, '
            f'{len(scatter.points)} points (hover or tap one to see its row)">'),
           f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="#888"/>']
    for t in _ticks(x0, x1):
        out.append(f'<line x1="{px(t)}" x2="{px(t)}" y1="{TOP}" y2="{TOP + h}" stroke="#eee"/>'
                   f'<text x="{px(t)}" y="{TOP + h + 16}" font-size="12" text-anchor="middle">{t:g}</text>')
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{LEFT}" x2="{LEFT + w}" y1="{py(t)}" y2="{py(t)}" stroke="#eee"/>'
                   f'<text x="{LEFT - 6}" y="{py(t) + 4}" font-size="12" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="{LEFT + w / 2}" y="{HEIGHT - 10}" font-size="13" text-anchor="middle">{xl}</text>'
               f'<text transform="translate(16 {TOP + h / 2}) rotate(-90)" font-size="13" '
               f'text-anchor="middle">{yl}</text>')
    for label, x, y, group in scatter.points:
        xt, yt = _number(x, x_decimals), _number(y, y_decimals)
        name = escape(label)
        out.append(f'<circle cx="{px(x)}" cy="{py(y)}" r="3.5" fill="{colour[group]}" data-label="{name}" '
                   f'data-x="{x!r}" data-y="{y!r}" data-xt="{xt}" data-yt="{yt}">'
                   f'<title>{name}: {xl} {xt}, {yl} {yt}</title></circle>')
    out.append('</svg><div class="tip" role="status" hidden></div><figcaption>')
    if scatter.grouped:
        out += [f'<span class="key" style="background:{colour[g]}"></span>{escape(g)}' for g in groups]
        out.append("<br>")
    out.append(f'{len(scatter.points)} points; hover or tap a point to see its row. '
               f'Static plot (as in Markdown and LaTeX): <a href="{escape(scatter.plot)}">{escape(scatter.plot)}</a>'
               '</figcaption></figure>')
    return Markup("\n".join(out))
