"""Reading files that may be hostile: the one place every reader opens a file it did not write.

Only regular files are read (a FIFO, socket or device is reported by type and never waited on:
it is opened non-blocking and checked with ``fstat`` before a byte is read), sizes are capped
before reading, text must be UTF-8, JSON is parsed within a depth limit, and a symlink loop or
a permission problem is a message, not a traceback. Every problem is an :class:`UnreadableFile`
(an :class:`~ldr_plugin.errors.LdrError`) whose message names the file, printable even when its
name is not valid UTF-8.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "x.json")
>>> _ = open(path, "w").write('{"a": 1}')
>>> read_json(path)
{'a': 1}
"""

from __future__ import annotations

import errno
import json
import os
import stat
from typing import Any

import orjson

from ldr_plugin.errors import LdrError

MAX_BYTES = 256 * 1024**2  # a record, spec or results.jsonl above this is not one we wrote
_TYPES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class UnreadableFile(LdrError):
    """A file that cannot be read as what it should be; the message names it and says why."""


def display(path: str | os.PathLike) -> str:
    """A path as printable text: bytes that are not UTF-8 shown as ``\\xff`` (never an encoding error)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    return exc.strerror or type(exc).__name__


def read_bytes(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; anything else is :class:`UnreadableFile`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise UnreadableFile(f"{display(path)}: cannot read {what} ({_reason(exc)})") from exc
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd)
        kind = next((name for test, name in _TYPES if test(mode.st_mode)), None)
        if kind is not None or not stat.S_ISREG(mode.st_mode):
            raise UnreadableFile(f"{display(path)}: not a regular file ({kind or 'special file'}); not read")
        if mode.st_size > max_bytes:
            raise UnreadableFile(f"{display(path)}: {mode.st_size} bytes, more than a {what} may hold "
                                 f"({max_bytes} bytes); not read")
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise UnreadableFile(f"{display(path)}: cannot read {what} ({_reason(exc)})") from exc
    if len(data) > max_bytes:  # grew while being read
        raise UnreadableFile(f"{display(path)}: more than {max_bytes} bytes; not read")
    return data


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text of ``data``; invalid bytes are :class:`UnreadableFile` naming the byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{source}: not UTF-8 text (byte {exc.start}: {exc.reason})") from exc


def read_text(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES, what: str = "file") -> str:
    """:func:`read_bytes` decoded as UTF-8."""
    return decode_text(read_bytes(path, max_bytes=max_bytes, what=what), display(path))


def loads_json(data: bytes | str, source: str) -> Any:
    """One JSON value: orjson (depth limit 1024, 64-bit integers), else the stdlib for what orjson
    refuses but JSON writers produce (``NaN``, big integers); every failure is :class:`UnreadableFile`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as first:
        try:
            return json.loads(data)
        except RecursionError as exc:
            raise UnreadableFile(f"{source}: not valid JSON (nested too deeply)") from exc
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many integer digits
            message = str(first) if "depth" in str(first) else str(exc)
            raise UnreadableFile(f"{source}: not valid JSON ({message[:200]})") from exc


def read_json(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES, what: str = "JSON file") -> Any:
    """:func:`loads_json` of a regular file."""
    return loads_json(read_bytes(path, max_bytes=max_bytes, what=what), display(path))
