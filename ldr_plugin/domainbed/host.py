"""The one place that imports DomainBed: finding it (``DOMAINBED_DIR``), its root, and names to classes.

Every other module asks this one (:func:`import_domainbed`), so a missing or broken DomainBed
is one ``None`` here, never an import error elsewhere. Names resolve plugin entry points first:
algorithms: ``domainbed.algorithms`` entry points (LatentDR, third-party plugins), then DomainBed's
own (``ERM``, ``Mixup``, ...) when DomainBed is importable, else the host-free ``ERM`` and ``Mixup`` twins.
Datasets: ``domainbed.datasets`` entry points (the embedded digits), then DomainBed's
(``Debug28``, ...). An unknown name raises :class:`~ldr_plugin.errors.UnknownNameError` listing
close matches, before any data is loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from ldr_plugin.errors import LdrError, UnknownNameError
from ldr_plugin.plugins import plugin_group, unknown_name_message

HOST_FREE_ALGORITHMS = ("ERM", "Mixup")  # twins of DomainBed's, in ldr_plugin.domainbed.twins


def import_domainbed(module: str = "domainbed") -> ModuleType | None:
    """Import a DomainBed module (a clone at ``$DOMAINBED_DIR`` is put on ``sys.path``), or ``None``."""
    root = os.environ.get("DOMAINBED_DIR")
    if root and (Path(root) / "domainbed").is_dir() and root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def domainbed_root() -> Path | None:
    """The DomainBed checkout in use: the imported ``domainbed`` package's parent, else ``$DOMAINBED_DIR``
    (which must be a clone), else an importable ``domainbed`` package's parent; ``None`` if none."""
    module = sys.modules.get("domainbed")
    if module is not None and getattr(module, "__file__", None):
        return Path(module.__file__).resolve().parent.parent
    root = os.environ.get("DOMAINBED_DIR")
    if root:
        if not (Path(root) / "domainbed" / "scripts" / "sweep.py").is_file():
            raise LdrError(f"DOMAINBED_DIR={root} is not a DomainBed clone (no domainbed/scripts/sweep.py)")
        return Path(root).resolve()
    spec = importlib.util.find_spec("domainbed")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


def _domainbed_list(module: str, attr: str) -> list[str]:
    mod = import_domainbed(module)
    return list(getattr(mod, attr, [])) if mod is not None else []


def algorithm_names() -> list[str]:
    """Every algorithm name the loop can train (plugins, then DomainBed's or the ERM twin)."""
    names = plugin_group("algorithms").names()
    host = _domainbed_list("domainbed.algorithms", "ALGORITHMS") or list(HOST_FREE_ALGORITHMS)
    return names + [n for n in host if n not in names]


def dataset_names() -> list[str]:
    """Every dataset name the loop can train on (plugins, then DomainBed's)."""
    names = plugin_group("datasets").names()
    return names + [n for n in _domainbed_list("domainbed.datasets", "DATASETS") if n not in names]


def resolve_algorithm(algorithm: str | type) -> type:
    """A DomainBed-interface algorithm class from its name (or the class itself)."""
    if not isinstance(algorithm, str):
        return algorithm
    plugins = plugin_group("algorithms")
    if algorithm in plugins.names():
        return plugins.load(algorithm)
    host = import_domainbed("domainbed.algorithms")
    if host is not None:
        if algorithm in getattr(host, "ALGORITHMS", []) or isinstance(getattr(host, algorithm, None), type):
            return host.get_algorithm_class(algorithm)
    elif algorithm in HOST_FREE_ALGORITHMS:
        from ldr_plugin.domainbed import twins  # torch: imported only when a twin is trained

        return getattr(twins, algorithm)
    raise UnknownNameError(unknown_name_message(algorithm, algorithm_names(), what="algorithm"))


def resolve_dataset(dataset: str | type) -> type:
    """A DomainBed-interface dataset class from its name (or the class itself)."""
    if not isinstance(dataset, str):
        return dataset
    plugins = plugin_group("datasets")
    if dataset in plugins.names():
        return plugins.load(dataset)
    host = import_domainbed("domainbed.datasets")
    if host is not None and dataset in getattr(host, "DATASETS", []):
        return host.get_dataset_class(dataset)
    raise UnknownNameError(unknown_name_message(dataset, dataset_names(), what="dataset"))


def hparams_function(algorithm: str):
    """The ``domainbed.hparams`` entry point declared for ``algorithm``, or ``None``."""
    plugins = plugin_group("hparams")
    return plugins.load(algorithm) if algorithm in plugins.names() else None
