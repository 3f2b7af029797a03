"""Declarative TOML files (leaderboard specs, score selections, training configs): read one, fill a dataclass.

One reader and one unknown-key check for every such file, so a typo is always an error naming the
file and the key, never a silently ignored setting.

>>> from dataclasses import dataclass
>>> @dataclass
... class Run:
...     steps: int = 10
>>> dataclass_from_table(Run, {"steps": 3}, "run.toml")
Run(steps=3)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, TypeVar

from ldr_plugin.errors import LdrError
from ldr_plugin.files import display, read_text

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

T = TypeVar("T")


def read_toml(path: str | os.PathLike, what: str = "TOML file") -> dict[str, Any]:
    """The table of a TOML file; an unreadable or invalid file is an :class:`LdrError` naming it."""
    path = Path(path)
    text = read_text(path, max_bytes=16 * 1024**2, what=what)  # a regular UTF-8 file, or a named problem
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LdrError(f"{display(path)}: not valid TOML ({exc})") from exc
    except RecursionError as exc:
        raise LdrError(f"{display(path)}: not valid TOML (nested too deeply)") from exc


def check_keys(table: dict[str, Any], known: set[str] | list[str], where: str, prefix: str = "") -> None:
    """Raise :class:`LdrError` for the first key of ``table`` that is not in ``known``."""
    for key in table:
        if key not in known:
            raise LdrError(f"{where}: unknown key '{prefix}{key}'; known keys: {sorted(known)}")


def dataclass_from_table(cls: type[T], table: dict[str, Any], where: str, prefix: str = "", **extra: Any) -> T:
    """``cls(**table, **extra)`` after checking every key is one of its fields (``extra`` aside)."""
    check_keys(table, {f.name for f in dataclasses.fields(cls)} - set(extra), where, prefix)
    try:
        return cls(**table, **extra)
    except TypeError as exc:  # a required field missing
        raise LdrError(f"{where}: {exc}") from exc
