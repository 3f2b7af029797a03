"""Hostile input: model ids, dataset names and commands are data, checked before they touch anything.

Names that end up in file names, commands or rendered tables are checked against an allow-list
(so ``../``, NUL, newlines and shell metacharacters never get through); text that ends up in a
LaTeX or Markdown table is escaped. Commands are split with :mod:`shlex` and run without a shell.

>>> check_model_id("robustbench:cifar10/Linf/Standard")
'robustbench:cifar10/Linf/Standard'
>>> check_dataset_name("../etc")
Traceback (most recent call last):
...
ldr_plugin.safety.UnsafeNameError: dataset name '../etc' contains '/' (allowed: letters, digits and ._-)
>>> latex_escape("50% of a_b & c")
'50\\\\% of a\\\\_b \\\\& c'
"""

from __future__ import annotations

import html
import re
import shlex
from pathlib import Path, PurePosixPath

from ldr_plugin.errors import LdrError


class UnsafeNameError(LdrError, ValueError):
    """A name or command that could escape its folder, inject into a shell, or break a file name."""


_DATASET_OK = re.compile(r"[A-Za-z0-9._-]")
_IDENTIFIER_OK = re.compile(r"[A-Za-z0-9._+=@,:/-]")
_SOURCE = re.compile(r"^[a-z][a-z0-9_-]*$")
MAX_NAME_LENGTH = 512


def _first_bad_char(value: str, allowed: re.Pattern) -> str | None:
    return next((c for c in value if not allowed.fullmatch(c)), None)


def _describe(char: str) -> str:
    return repr(char) if char.isprintable() and char != "'" else f"{char!r} (code {ord(char)})"


def check_dataset_name(value: str, *, what: str = "dataset name") -> str:
    """A dataset (or split, layer, metric) name: letters, digits and ``._-`` only, not starting with ``.``."""
    if not isinstance(value, str) or not value:
        raise UnsafeNameError(f"{what} must be a non-empty string, got {value!r}")
    bad = _first_bad_char(value, _DATASET_OK)
    if bad is not None:
        raise UnsafeNameError(f"{what} {value!r} contains {_describe(bad)} (allowed: letters, digits and ._-)")
    if value.startswith(".") or len(value) > MAX_NAME_LENGTH:
        raise UnsafeNameError(f"{what} {value!r} must not start with '.' or exceed {MAX_NAME_LENGTH} characters")
    return value


def check_identifier(value: str, *, what: str = "model identifier", allow_absolute: bool = False) -> str:
    """A model identifier (may contain ``/``): allow-listed characters, no ``..``/``.`` components, no ``//``.

    Absolute paths (``/data/run``) pass only with ``allow_absolute`` (e.g. DomainBed run directories).
    """
    if not isinstance(value, str) or not value:
        raise UnsafeNameError(f"{what} must be a non-empty string, got {value!r}")
    bad = _first_bad_char(value, _IDENTIFIER_OK)
    if bad is not None:
        raise UnsafeNameError(f"{what} {value!r} contains {_describe(bad)} (allowed: letters, digits and ._+=@,:/-)")
    if len(value) > MAX_NAME_LENGTH:
        raise UnsafeNameError(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if value.startswith("/") and not allow_absolute:
        raise UnsafeNameError(f"{what} {value!r} is an absolute path, which is not allowed here")
    parts = value.lstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafeNameError(f"{what} {value!r} has an empty, '.' or '..' path component")
    if value.startswith("-"):
        raise UnsafeNameError(f"{what} {value!r} starts with '-' (it would read as a command-line option)")
    return value


def check_model_id(value: str, *, allow_absolute: bool = False) -> str:
    """A ``source:identifier`` model id: a lower-case source name, then a safe identifier."""
    if not isinstance(value, str) or ":" not in value:
        raise UnsafeNameError(f"model id {value!r} should be 'source:identifier'")
    source, identifier = value.split(":", 1)
    if not _SOURCE.match(source):
        raise UnsafeNameError(f"model id {value!r}: source {source!r} should match {_SOURCE.pattern}")
    check_identifier(identifier, what=f"model id {value!r}: identifier", allow_absolute=allow_absolute)
    return value


def path_within(base: str | Path, relative: str) -> Path:
    """``base / relative`` after checking that it cannot leave ``base`` (no ``..``, no absolute path, no link out)."""
    check_identifier(relative, what="relative path")
    base_path = Path(base).resolve()
    target = (base_path / PurePosixPath(relative)).resolve()
    if target != base_path and base_path not in target.parents:
        raise UnsafeNameError(f"path {relative!r} leads outside {base_path} (to {target})")
    return target


def split_command(command: str) -> list[str]:
    """Split a command line into argv with :mod:`shlex` (to run with ``shell=False``); reject NUL and empties."""
    if not isinstance(command, str) or "\0" in command:
        raise UnsafeNameError(f"command {command!r} is not a string without NUL characters")
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UnsafeNameError(f"command {command!r} cannot be split into arguments: {exc}") from exc
    if not argv:
        raise UnsafeNameError("empty command")
    return argv


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "\n": " ",
}


def latex_escape(text: str) -> str:
    """Text safe inside a LaTeX table cell (every special character escaped, newlines as spaces)."""
    return "".join(_LATEX_SPECIALS.get(c, c) for c in str(text))


def markdown_escape(text: str) -> str:
    """Text safe inside a Markdown table cell: ``|``, backslash, backtick, ``*_[]<>`` escaped, no newlines."""
    out = str(text).replace("\\", "\\\\")
    for char in "|`*_[]<>":
        out = out.replace(char, "\\" + char)
    return out.replace("\r", " ").replace("\n", " ")


def html_escape(text: str) -> str:
    """Text safe inside HTML element content or a quoted attribute (``&<>"'`` escaped)."""
    return html.escape(str(text), quote=True)
