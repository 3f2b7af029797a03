"""A :class:`~ldr_plugin.kstar.compare.KStarComparison` as a text table and as a figure (PNG/SVG).

The figure: left, the paired per-sample scatter of k̂* (A on x, B on y, one colour per class, the
diagonal = unchanged); right, one pair of horizontal violins per class (A above, B below, x fixed to
[0, 1], B hatched) with "γ a → b" beside it, red when the pattern flipped.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.compare import Change, KStarComparison
from ldr_plugin.kstar.plot import PATTERN_COLOURS, _pyplot, save_figure


def _v(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "undef"
    return "-inf" if value == -math.inf else "+inf" if value == math.inf else f"{value:.3f}"


def _d(value: float) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:+.3f}"


def _change_line(name: str, c: Change, confidence: float | None) -> str:
    ci = "" if math.isnan(c.ci_low) else f"  {100 * confidence:g}% CI [{c.ci_low:+.3f}, {c.ci_high:+.3f}]"
    return f"{name}: {_v(c.a)} -> {_v(c.b)}  change {_d(c.change)}{ci}"


def comparison_table(cmp: KStarComparison, *, max_rows: int = 60) -> str:
    """Per-class μ, σ, γ and pattern of A and B with the change, then Γ′ / Γ with their CIs."""
    head = (f"{'class':<18} {'n':>6} {'mu A':>7} {'mu B':>7} {'dmu':>7} {'sig A':>7} {'sig B':>7} "
            f"{'gamma A':>8} {'gamma B':>8} {'dgamma':>7}  pattern A -> B")
    lines = [f"A = {cmp.a.label}", f"B = {cmp.b.label}", f"distance = {cmp.a.distance}", head]
    for c in cmp.classes[:max_rows]:
        flip = "  FLIPPED" if c["flipped"] else ""
        lines.append(
            f"{c['name'][:18]:<18} {c['n']:>6} {c['mu_a']:>7.3f} {c['mu_b']:>7.3f} {_d(c['mu_change']):>7} "
            f"{c['sigma_a']:>7.3f} {c['sigma_b']:>7.3f} {_v(c['gamma_a']):>8} {_v(c['gamma_b']):>8} "
            f"{_d(c['gamma_change']):>7}  {c['pattern_a']} -> {c['pattern_b']}{flip}")
    if len(cmp.classes) > max_rows:
        lines.append(f"... {len(cmp.classes) - max_rows} more classes (see the JSON report)")
    conf = cmp.bootstrap.get("confidence")
    lines.append(_change_line("Γ′", cmp.gamma_prime, conf) + (f" [infinite={cmp.a.infinite}]"
                                                              if cmp.a.infinite != "exclude" else ""))
    lines.append(_change_line("Γ ", cmp.gamma, conf))
    if cmp.bootstrap.get("n_resamples"):
        lines.append(f"  (paired bootstrap over samples, resampled within each class: {cmp.bootstrap['n_resamples']} "
                     f"resamples, seed {cmp.bootstrap['seed']})")
    lines.append(f"pattern flipped in {len(cmp.flipped)} of {len(cmp.classes)} classes"
                 + (f": {', '.join(cmp.flipped[:20])}" if cmp.flipped else ""))
    lines.append(f"rank correlation of per-class γ (Spearman, A vs B): {_v(cmp.class_gamma_spearman)}")
    if cmp.per_sample:
        ps = cmp.per_sample
        lines.append(f"per sample: {100 * ps['equal_kstar']:.1f}% equal k*, Spearman of k̂* {ps['spearman']:.3f}, "
                     f"mean change of k̂* {ps['mean_change_normalised']:+.4f}")
    lines += [f"note: {n}" for n in cmp.notes]
    return "\n".join(lines)


def plot_comparison(cmp: KStarComparison, path: str | os.PathLike, *, classes_per_panel: int = 20) -> Path:
    """Paired per-sample scatter and per-class violin pairs (needs per-sample k* of both sides)."""

    if cmp.a.kstar is None or cmp.b.kstar is None:
        raise LdrError("the comparison plot needs per-sample k* of both inputs (" + "; ".join(cmp.notes) + ")")
    plt = _pyplot()
    codes = cmp.a.codes
    sizes = np.bincount(codes, minlength=len(cmp.classes))
    na, nb = cmp.a.kstar / sizes[codes], cmp.b.kstar / sizes[codes]
    shown = list(range(min(len(cmp.classes), classes_per_panel)))
    fig, (ax_s, ax_v) = plt.subplots(1, 2, figsize=(12, 0.42 * len(shown) + 2.8),
                                     gridspec_kw={"width_ratios": [1, 1.3]})
    dense = na.size > 2000
    for c in range(len(cmp.classes)):
        member = codes == c
        ax_s.scatter(na[member], nb[member], s=4 if dense else 10, alpha=0.35 if dense else 0.7,
                     color=f"C{c % 10}", linewidths=0, label=cmp.classes[c]["name"] if c < 10 else None)
    ax_s.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--")
    ax_s.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel=f"k̂* of A ({cmp.a.label})"[:70],
             ylabel=f"k̂* of B ({cmp.b.label})"[:70], title="paired per-sample k̂* (diagonal: unchanged)")
    if len(cmp.classes) <= 10:
        ax_s.legend(fontsize=7, markerscale=2)
    for pos, c in enumerate(shown):
        y = len(shown) - 1 - pos
        row = cmp.classes[c]
        for values, offset, pattern, hatch in ((na[codes == c], 0.18, row["pattern_a"], None),
                                               (nb[codes == c], -0.18, row["pattern_b"], "///")):
            colour = PATTERN_COLOURS[pattern]
            if np.ptp(values) > 0:
                parts = ax_v.violinplot([values], positions=[y + offset], orientation="horizontal",
                                        showextrema=False, widths=0.34)
                for body in parts["bodies"]:
                    body.set_facecolor(colour)
                    body.set_edgecolor(colour)
                    body.set_alpha(0.45)
                    body.set_hatch(hatch)
            else:
                ax_v.plot([values[0]] * 2, [y + offset - 0.15, y + offset + 0.15], color=colour, lw=3)
            ax_v.plot([values.mean()], [y + offset], marker="D", color="black", markersize=3)
        ax_v.text(1.02, y, f"γ {_v(row['gamma_a'])} → {_v(row['gamma_b'])}", va="center", fontsize=7,
                  color="tab:red" if row["flipped"] else "black", transform=ax_v.get_yaxis_transform(),
                  clip_on=False)
    ax_v.set_yticks(range(len(shown)))
    ax_v.set_yticklabels([cmp.classes[c]["name"] for c in reversed(shown)], fontsize=8)
    ax_v.set(xlim=(0, 1), ylim=(-0.7, len(shown) - 0.3), xlabel="normalised k* (upper violin A, lower hatched B)")
    more = f" (first {len(shown)} of {len(cmp.classes)} classes)" if len(shown) < len(cmp.classes) else ""
    ax_v.set_title(f"per-class k̂*{more}; red: pattern flipped", fontsize=9)
    gp = cmp.gamma_prime
    ci = "" if math.isnan(gp.ci_low) else f" [{gp.ci_low:+.3f}, {gp.ci_high:+.3f}]"
    fig.suptitle(f"k* comparison ({cmp.a.distance}): Γ′ {_v(gp.a)} → {_v(gp.b)}, change {_d(gp.change)}{ci}; "
                 f"{len(cmp.flipped)} pattern(s) flipped", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
