"""The outcome of a launch: one line per item, counts, and the log of every failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ldr_plugin.errors import LdrError


class LaunchFailed(LdrError):
    """Some items of a launch failed; the message is the summary, ``summary`` holds the details."""

    def __init__(self, summary: Summary):
        super().__init__(summary.format(brief=True))
        self.summary = summary


@dataclass
class Outcome:
    """One item: its display name, success, the error (last traceback line first) and the job's logs."""

    name: str
    ok: bool
    error: str | None = None
    log: str | None = None  # stderr log of the job that ran the item (None inline)
    stdout: str | None = None
    job_id: str | None = None
    result: Any = None

    @property
    def reason(self) -> str:
        """The last line of the error (an exception's type and message), or ``"failed"``."""
        return ((self.error or "failed").strip().splitlines()[-1:] or ["failed"])[0]


@dataclass
class Summary:
    """Every item's outcome, with counts and a printable report naming the log of each failure."""

    launcher: str
    outcomes: list[Outcome] = field(default_factory=list)
    n_jobs: int = 0
    seconds: float = 0.0

    @property
    def succeeded(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def results(self) -> list[Any]:
        return [o.result for o in self.outcomes]

    def format(self, brief: bool = False) -> str:
        """``N items in J jobs (launcher): S succeeded, F failed`` then, per failure, its name, error and log."""
        head = (
            f"{len(self.outcomes)} item(s) in {self.n_jobs} job(s) via {self.launcher}, {self.seconds:.1f} s: "
            f"{len(self.succeeded)} succeeded, {len(self.failed)} failed"
        )
        lines = [head]
        for outcome in self.failed:
            lines.append(f"  FAILED {outcome.name}: {outcome.reason}")
            if outcome.log:
                lines.append(f"         log: {outcome.log}")
            elif not brief and outcome.error:
                lines.extend("         " + line for line in outcome.error.strip().splitlines()[-6:])
        return "\n".join(lines)

    def raise_for_failures(self) -> Summary:
        """Raise :class:`LaunchFailed` if any item failed; return ``self`` otherwise."""
        if self.failed:
            raise LaunchFailed(self)
        return self
