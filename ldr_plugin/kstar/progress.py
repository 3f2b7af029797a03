"""Progress of a long k* search, with an estimate of the remaining time.

Work is counted in distance computations (query rows × candidate columns), so the estimate stays
right when phases of different cost follow each other (the screened search, then the same-class
counts). On a terminal: a tqdm bar (elapsed, remaining). Otherwise (a log file, a batch job):
plain lines, one every ``every_s`` seconds (``LDR_PROGRESS_SECONDS``, default 60), each with the
fraction done and the time left; ``ldr -q`` (and a caller's ``one_bar``) silences them.

``enabled``: True shows progress, False never, None (default) shows the bar on a terminal and
the plain lines only once a run has lasted ``every_s`` seconds (short runs stay quiet).

>>> p = Progress(total=100, desc="k* demo", enabled=False)
>>> p.update(40); p.close(); p.done
40
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ldr_plugin.progress import interval_s, unasked_progress_off


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """A progress counter over ``total`` units of work (see the module docstring)."""

    def __init__(self, total: float, desc: str, enabled: bool | None = None, *, every_s: float | None = None,
                 stream: TextIO | None = None):
        every_s = interval_s() if every_s is None else every_s
        enabled = False if enabled is None and unasked_progress_off() else enabled
        self.total, self.desc, self.every_s = max(float(total), 1.0), desc, every_s
        self.done = 0
        self.stream = stream or sys.stderr
        self.start = self.last = time.perf_counter()
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None
        self.lines = not tty and enabled is not False
        self.quiet_until = self.start + (every_s if enabled is None else 0.0)
        if tty and enabled is not False:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=desc, unit="", unit_scale=True, file=self.stream,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} elapsed, {remaining} left")
        self.phase = ""

    def set_phase(self, phase: str) -> None:
        """Name what is running now (shown in the bar and the lines)."""
        self.phase = phase
        if self.bar is not None:
            self.bar.set_description_str(f"{self.desc} ({phase})")

    def update(self, amount: float) -> None:
        self.done += amount
        if self.bar is not None:
            self.bar.update(amount)
            return
        now = time.perf_counter()
        if self.lines and now >= self.quiet_until and now - self.last >= self.every_s:
            self.last = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        """One plain progress line: fraction done, elapsed, estimated time left."""
        elapsed = (now or time.perf_counter()) - self.start
        frac = min(1.0, self.done / self.total)
        left = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        eta = _clock(left) if frac > 0 else "unknown"
        phase = f" ({self.phase})" if self.phase else ""
        return f"{self.desc}{phase}: {100 * frac:.0f}% done, {_clock(elapsed)} elapsed, ~{eta} left"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.lines and time.perf_counter() >= self.quiet_until and self.last > self.start:
            self.stream.write(f"{self.desc}: done in {_clock(time.perf_counter() - self.start)}\n")
            self.stream.flush()
