"""Where the declarative files of ``registry/`` are: in the wheel (``ldr_plugin/_registry``), or in a checkout.

A leaderboard spec shipped with the package can be named by its stem (``dg_study``) instead of a
path, so a command recorded in a page (``ldr leaderboard build dg_study --results ...``) runs the same
after a regular install, a checkout, or in a tox environment: no site-packages path in it.

>>> registry_spec("dg_study").name
'dg_study.toml'
>>> spec_argument(str(registry_spec("dg_study")))
'dg_study'
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ldr_plugin.errors import LdrError
from ldr_plugin.plugins import unknown_name_message

_PACKAGE = Path(str(resources.files("ldr_plugin")))


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


def registry_spec_names() -> list[str]:
    """Stems of the leaderboard specs the package ships (``registry/leaderboards/*.toml``)."""
    return sorted(p.stem for p in (registry_root() / "leaderboards").glob("*.toml"))


def registry_spec(name: str) -> Path:
    """A shipped leaderboard spec by stem (``dg_study`` or ``dg_study.toml``); unknown: close matches."""
    stem = name.removesuffix(".toml")
    path = registry_root() / "leaderboards" / f"{stem}.toml"
    if "/" in stem or os.sep in stem or not path.is_file():
        raise LdrError(unknown_name_message(name, registry_spec_names(),
                                            what="leaderboard spec (neither a file here nor a shipped spec)"))
    return path


def resolve_spec(argument: str) -> str:
    """A spec argument as a path: an existing file as given, else a shipped spec of that name."""
    if Path(argument).is_file():
        return argument
    return str(registry_spec(argument))


def spec_argument(path: str | os.PathLike) -> str:
    """How a command line should name a spec file: its stem if it is a shipped spec, else the path."""
    try:
        root = registry_root() / "leaderboards"
        resolved = Path(path).resolve()
        if resolved.parent == root.resolve() and resolved.suffix == ".toml":
            return resolved.stem
    except LdrError:
        pass
    return str(path)


def checked_in_table(board: str) -> Path | None:
    """``leaderboards/<board>/<board>.csv`` of a checked-in study: the wheel's copy
    (``ldr_plugin/_leaderboards``) or the checkout's; None if neither has it."""
    for root in (_PACKAGE / "_leaderboards", _PACKAGE.parent / "leaderboards"):
        path = root / board / f"{board}.csv"
        if path.is_file():
            return path
    return None
