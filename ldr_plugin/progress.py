"""Progress of long work: a tqdm bar on a terminal, plain lines at a low rate anywhere else.

A bar redrawn with carriage returns is noise in a log file, and nothing at all (tqdm's default
when stderr is not a terminal) leaves a 15-minute job silent. So off a terminal, :func:`progress`
prints one line when the work starts, then at most one every ``LDR_PROGRESS_SECONDS`` (default 60)
with the count, rate and time left, and one when it ends; ``ldr -q`` silences them, and so does
:func:`one_bar` for the work inside a caller's own bar (the demo's one bar per phase).

>>> for _ in progress(range(3), desc="demo", enabled=False):
...     pass
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm


def interval_s() -> float:
    """Seconds between plain progress lines (``LDR_PROGRESS_SECONDS``, default 60, at least 1)."""
    try:
        return max(1.0, float(os.environ.get("LDR_PROGRESS_SECONDS", "60")))
    except ValueError:
        return 60.0


def quiet() -> bool:
    """True under ``ldr -q`` (the ``ldr_plugin`` logger above INFO)."""
    level = logging.getLogger("ldr_plugin").level  # NOTSET (no CLI): speak
    return level > logging.INFO


_ONE_BAR = contextvars.ContextVar("ldr_one_bar", default=False)


@contextlib.contextmanager
def one_bar() -> Iterator[None]:
    """While the block runs, progress nobody asked for (``enabled=None``) shows nothing: the caller
    draws one bar over all of it, and a finished inner bar per item would leave a line each."""
    token = _ONE_BAR.set(True)
    try:
        yield
    finally:
        _ONE_BAR.reset(token)


def unasked_progress_off() -> bool:
    """True under ``ldr -q`` or inside :func:`one_bar`: ``enabled=None`` progress stays silent."""
    return quiet() or _ONE_BAR.get()


class _Sink:
    """Where tqdm's own writes of a :class:`_Lines` go (the newline it adds on close): nowhere."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class _Lines(tqdm):
    """tqdm that writes whole lines (start, every ``mininterval`` seconds, end) instead of redrawing;
    a count already printed is not printed again (the close after the last update), no blank line."""

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is None and self.n == getattr(self, "_printed_n", None):
            return True
        self._printed_n = self.n if msg is None else None
        text = self.format_meter(**self.format_dict) if msg is None else msg
        print(text.replace("\r", "").strip(), file=sys.stderr, flush=True)
        return True


def progress(iterable: Iterable | None = None, *, desc: str, total: int | None = None, unit: str = "it",
             enabled: bool | None = None, **options: Any) -> tqdm:
    """A progress bar over ``iterable``: ``enabled`` True (a bar), False (nothing), None (a bar on a
    terminal, else plain lines at a low rate, or nothing under ``ldr -q`` or :func:`one_bar`)."""
    if enabled is False or (enabled is None and unasked_progress_off()):
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=True, **options)
    if enabled is None and not sys.stderr.isatty():
        interval = interval_s()
        line = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%), {elapsed} elapsed, about {remaining} left"
        return _Lines(iterable, desc=desc, total=total, unit=unit, mininterval=interval, maxinterval=interval, file=_Sink(),
                      miniters=1, leave=True, bar_format=line if total or hasattr(iterable, "__len__") else None,
                      **{k: v for k, v in options.items() if k != "leave"})
    return tqdm(iterable, desc=desc, total=total, unit=unit, **options)
