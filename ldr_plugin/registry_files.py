"""Where the declarative files of ``registry/`` are: in the wheel (``ldr_plugin/_registry``), or in a checkout."""

from __future__ import annotations

from pathlib import Path

from ldr_plugin.errors import LdrError

_PACKAGE = Path(__file__).resolve().parent


def registry_root() -> Path:
    """The installed copy of ``registry/`` if the wheel has one, else the checkout's ``registry/``."""
    for candidate in (_PACKAGE / "_registry", _PACKAGE.parent / "registry"):
        if candidate.is_dir():
            return candidate
    raise LdrError(f"registry files not found (looked in {_PACKAGE / '_registry'} and {_PACKAGE.parent / 'registry'})")


def registry_file(*parts: str) -> Path:
    """A file of ``registry/``, e.g. ``registry_file("leaderboards", "dg_study.toml")``."""
    path = registry_root().joinpath(*parts)
    if not path.is_file():
        raise LdrError(f"registry file {'/'.join(parts)} not found under {registry_root()}")
    return path
