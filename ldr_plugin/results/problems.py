"""What readers and checks found wrong in their input: one :class:`Problem` type for all of them.

Record files (``ldr results check``, leaderboards), DomainBed run folders (the sweep reader) and
published sources report problems of this one shape, so every reader lists them the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# kinds: invalid, partial, duplicate, missing, old_schema (record files); incomplete_run, malformed_line,
# truncated_file, bad_record, schema_version, duplicate_step, duplicate_run, missing_run, bad_manifest (DomainBed
# run folders and their sweep's list of expected runs);
# published_missing (leaderboard inputs); unreadable (a FIFO, device, symlink loop, oversized file: not read)


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
        path = os.fsencode(self.path).decode("utf-8", "backslashreplace")  # printable, whatever the name
        where = f"{path}:{self.line}" if self.line is not None else path
        return f"{where}: {self.message}"
