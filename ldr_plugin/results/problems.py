"""What readers and checks found wrong in their input: one :class:`Problem` type for all of them.

Record files (``ldr results check``, leaderboards), DomainBed run folders (the sweep reader) and
published sources report problems of this one shape, so every reader lists them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

# kinds: invalid, partial, duplicate, missing (record files); incomplete_run, malformed_line,
# truncated_file, bad_record, schema_version, duplicate_step, duplicate_run (DomainBed run folders);
# published_missing (leaderboard inputs)


@dataclass(frozen=True)
class Problem:
    """One thing wrong or skipped: its kind, the file (or cell) concerned, why, and the line if any.

    >>> str(Problem("malformed_line", "sweep/run/results.jsonl", "not JSON; line skipped", line=2))
    'sweep/run/results.jsonl:2: not JSON; line skipped'
    """

    kind: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"
