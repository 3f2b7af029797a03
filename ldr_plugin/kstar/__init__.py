"""k* distribution metrics (Kotyan et al.): per-sample k*, per-class skewness, Γ and Γ′.

Host-free core. ``kstar_values`` gives raw k* (1-based, query excluded by index, pessimistic
ties); ``kstar_summary`` gives per-class statistics, patterns and aggregates.

>>> import numpy as np
>>> x = np.array([[0.], [1.], [2.], [3.], [2.6], [10.], [11.], [12.]])
>>> kstar_values(x, [0, 0, 0, 0, 1, 1, 1, 1], dtype="float64").tolist()
[3, 3, 1, 1, 1, 3, 3, 3]
"""

from ldr_plugin.kstar.api import kstar_search, kstar_summary, kstar_tie_count, kstar_values
from ldr_plugin.kstar.stats import (
    CLUSTERED,
    FRACTURED,
    OVERLAPPED,
    ClassStats,
    KStarSummary,
    adjusted_skewness,
    pattern_of,
    skewness,
    summarise,
)

__all__ = [
    "CLUSTERED",
    "FRACTURED",
    "OVERLAPPED",
    "ClassStats",
    "KStarSummary",
    "adjusted_skewness",
    "kstar_search",
    "kstar_summary",
    "kstar_tie_count",
    "kstar_values",
    "pattern_of",
    "skewness",
    "summarise",
]


def __getattr__(name):  # plots pull in matplotlib: import them only when asked for
    if name in ("plot_violins", "plot_gamma_scatter"):
        from ldr_plugin.kstar import plot

        return getattr(plot, name)
    raise AttributeError(name)
