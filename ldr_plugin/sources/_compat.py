"""The one place that repairs RobustBench's import failures and keeps it from downloading.

robustbench 1.1.1 imports ``pkg_resources`` (gone from current setuptools) and ``autoattack``
(its PyPI dependency installs the package as ``pyautoattack``). :func:`import_robustbench` adds a
minimal ``pkg_resources`` shim only when the real one is absent and aliases ``autoattack`` to the
installed ``pyautoattack`` only when no ``autoattack`` module exists, then imports robustbench.
:func:`no_downloads` replaces robustbench's download functions while a load runs.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator
from typing import Any

from ldr_plugin.errors import LdrError


def _pkg_resources_shim() -> types.ModuleType:
    """``pkg_resources.resource_filename`` is all robustbench uses; serve it from importlib."""
    shim = types.ModuleType("pkg_resources")

    def resource_filename(package: str, resource: str) -> str:
        spec = importlib.util.find_spec(package)
        base = os.path.dirname(spec.origin) if spec and spec.origin else "."
        return os.path.join(base, resource)

    shim.resource_filename = resource_filename  # type: ignore[attr-defined]
    shim.__ldr_shim__ = True  # type: ignore[attr-defined]
    return shim


def _alias_autoattack() -> None:
    if importlib.util.find_spec("autoattack") is not None:
        return
    if importlib.util.find_spec("pyautoattack") is None:
        raise LdrError("robustbench needs 'autoattack': install pyautoattack (pip install pyautoattack)")
    package = importlib.import_module("pyautoattack")
    sys.modules["autoattack"] = package
    for sub in ("autoattack", "state", "autopgd_base", "fab_pt", "square", "checks", "other_utils"):
        if importlib.util.find_spec(f"pyautoattack.{sub}") is not None:
            sys.modules[f"autoattack.{sub}"] = importlib.import_module(f"pyautoattack.{sub}")


def import_robustbench() -> Any:
    """Import robustbench (with the shims it needs); its absence is an :class:`LdrError`."""
    if "robustbench.utils" in sys.modules:
        return sys.modules["robustbench.utils"]
    if importlib.util.find_spec("robustbench") is None:
        raise LdrError("the robustbench source needs robustbench: pip install 'ldr-plugin[robustbench]'")
    shimmed = False
    try:
        importlib.import_module("pkg_resources")
    except ImportError:
        sys.modules["pkg_resources"] = _pkg_resources_shim()
        shimmed = True
    _alias_autoattack()
    try:
        importlib.import_module("robustbench.loaders")  # the module that does `import pkg_resources`
        return importlib.import_module("robustbench.utils")
    except Exception as exc:
        raise LdrError(f"robustbench failed to import even with the shims: {type(exc).__name__}: {exc}") from exc
    finally:
        # robustbench keeps its own reference; other code (pytest, setuptools users) must not find a
        # partial pkg_resources in sys.modules and take it for the real one
        if shimmed and getattr(sys.modules.get("pkg_resources"), "__ldr_shim__", False):
            del sys.modules["pkg_resources"]


def _refuse_download(*args: Any, **kwargs: Any) -> None:
    target = args[1] if len(args) > 1 else kwargs.get("fname_save", "?")
    raise LdrError(f"robustbench tried to download {target} (id {args[0] if args else '?'}); downloads are off")


@contextlib.contextmanager
def no_downloads(rb_utils: Any, *, trust_checkpoint: bool) -> Iterator[None]:
    """Within the block robustbench cannot download and the hub is offline.

    ``torch.load`` keeps its ``weights_only=True`` default unless ``trust_checkpoint`` (then the
    documented ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` switch is set for the block only).
    """
    saved = {name: getattr(rb_utils, name) for name in ("download_gdrive", "download_gdrive_new")}
    env_keys = ("HF_HUB_OFFLINE", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    saved_env = {k: os.environ.get(k) for k in env_keys}
    try:
        for name in saved:
            setattr(rb_utils, name, _refuse_download)
        os.environ["HF_HUB_OFFLINE"] = "1"
        if trust_checkpoint:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
        yield
    finally:
        for name, fn in saved.items():
            setattr(rb_utils, name, fn)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
