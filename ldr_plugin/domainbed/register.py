"""The one place that patches DomainBed's modules with entry-point plugins (idempotent, reversible).

DomainBed has no plugin API: it enumerates ``algorithms.ALGORITHMS`` / ``datasets.DATASETS``,
looks classes up in module globals, builds hyperparameters in ``hparams_registry._hparams`` and
launches with ``command_launchers.REGISTRY``. :func:`patch_module`, called by the start-up hook
right after one of those modules ran (or by :func:`register` for modules already imported):

- appends plugin names to ``ALGORITHMS`` / ``DATASETS`` in place (the list objects DomainBed's
  ``sweep``, ``collect_results`` and unit tests already hold);
- makes them resolvable, loading classes only on first use: wrapped ``get_algorithm_class`` /
  ``get_dataset_class``, a module ``__getattr__``, and for datasets a lazy stand-in in the module
  dict (``train.py`` looks datasets up in ``vars(datasets)``);
- wraps ``_hparams`` so plugin algorithms get their ``domainbed.hparams`` keys and plugin datasets
  their declared ones on top of DomainBed's base keys, with DomainBed's per-name seeding;
- adds ``domainbed.command_launchers`` entries to ``REGISTRY``.

A name DomainBed already defines is never shadowed (a warning, skipped). Patching twice (or after
``importlib.reload``) adds nothing twice; :func:`unregister` restores every patched module.
Names listed in ``DOMAINBED_PLUGINS_DISABLE`` are skipped (``1`` disables everything).
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from types import ModuleType
from typing import Any

from ldr_plugin.domainbed.host import import_domainbed
from ldr_plugin.domainbed.hparams_table import hparams_table
from ldr_plugin.plugins import Entry, plugin_group

STATE = "__ldr_plugin_patch__"  # per patched module: what we added, so it can be removed
MARK = "__ldr_plugin_wrapper__"
TARGETS = ("domainbed.algorithms", "domainbed.datasets", "domainbed.hparams_registry", "domainbed.command_launchers")
_LISTS = {  # module -> (entry-point group, list attribute, class getter)
    "domainbed.algorithms": ("algorithms", "ALGORITHMS", "get_algorithm_class"),
    "domainbed.datasets": ("datasets", "DATASETS", "get_dataset_class"),
}
_entries_cache: dict[str, dict[str, Entry]] = {}


def disabled_names() -> set[str] | None:
    """``None`` when ``DOMAINBED_PLUGINS_DISABLE`` switches everything off, else the names to skip."""
    try:
        from ldr_domainbed_hook import disabled_names as from_hook
    except ImportError:  # running from a source tree without the hook module on sys.path
        raw = os.environ.get("DOMAINBED_PLUGINS_DISABLE", "").strip()
        if raw.lower() in {"1", "true", "yes", "on", "all", "*"}:
            return None
        return {n.strip() for n in raw.split(",") if n.strip()}
    return from_hook()


def _warn(message: str) -> None:
    try:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    except Exception:  # noqa: BLE001 - warnings turned into errors must not break DomainBed's import
        sys.stderr.write(f"warning: {message}\n")


def plugin_entries(group: str) -> dict[str, Entry]:
    """Entry points of one group (``algorithms``, ``datasets``, ``hparams``, ``launchers``), minus opted-out names."""
    if group not in _entries_cache:
        try:
            _entries_cache[group] = plugin_group(group).entries()
        except Exception as exc:  # noqa: BLE001 - e.g. two distributions declaring one name
            _warn(f"ldr-plugin: DomainBed plugins of group {group} not registered: {exc}")
            _entries_cache[group] = {}
    skip = disabled_names() or set()
    return {name: entry for name, entry in _entries_cache[group].items() if name not in skip}


class LazyPluginClass:
    """Stands in a module dict for a plugin class until first use, then replaces itself."""

    _ldr_plugin_lazy = True

    def __init__(self, module: ModuleType, name: str):
        self._module, self._name = module, name

    def _target(self) -> type:
        return resolve(self._module, self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._target(), attr)

    def __repr__(self) -> str:
        return f"<lazy DomainBed plugin {self._module.__name__}.{self._name}>"


def _state(module: ModuleType) -> dict[str, Any]:
    return module.__dict__.setdefault(STATE, {"names": [], "attrs": set(), "builtins": set(), "launchers": []})


def resolve(module: ModuleType, name: str) -> type:
    """Load the plugin class ``name`` of a patched list module and cache it in the module dict."""
    group = _LISTS[module.__name__][0]
    value = plugin_entries(group)[name].load()
    module.__dict__[name] = value
    _state(module)["attrs"].add(name)
    return value


def _wrap(module: ModuleType, attr: str, make) -> None:
    current = module.__dict__.get(attr)
    if current is None or getattr(current, MARK, False):
        return
    wrapper = make(current)
    functools.update_wrapper(wrapper, current)
    setattr(wrapper, MARK, True)
    module.__dict__[attr] = wrapper


def _make_getter(module: ModuleType):
    def make(original):
        def getter(name):
            if name in _state(module)["names"]:
                value = module.__dict__.get(name)
                return resolve(module, name) if value is None or getattr(value, "_ldr_plugin_lazy", False) else value
            return original(name)

        return getter

    return make


def _install_module_getattr(module: ModuleType) -> None:
    previous = module.__dict__.get("__getattr__")
    if previous is not None and getattr(previous, MARK, False):
        return

    def __getattr__(name: str) -> Any:
        if name in module.__dict__.get(STATE, {}).get("names", ()):
            return resolve(module, name)
        if previous is not None:
            return previous(name)
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

    __getattr__.__wrapped__ = previous  # type: ignore[attr-defined]
    setattr(__getattr__, MARK, True)
    module.__dict__["__getattr__"] = __getattr__


def _patch_list_module(module: ModuleType) -> None:
    group, list_attr, getter = _LISTS[module.__name__]
    state = _state(module)
    names = module.__dict__[list_attr]
    ours = set(state["names"])
    builtins = {n for n in names if n not in ours} | {n for n in module.__dict__ if n not in state["attrs"]}
    state["builtins"] = builtins
    for name in plugin_entries(group):
        if name in builtins:
            _warn(f"ldr-plugin: {module.__name__} already defines '{name}'; the plugin of that name is ignored")
            continue
        if name not in names:
            names.append(name)
        if name not in state["names"]:
            state["names"].append(name)
        if group == "datasets" and name not in module.__dict__:
            module.__dict__[name] = LazyPluginClass(module, name)
            state["attrs"].add(name)
    _wrap(module, getter, _make_getter(module))
    _install_module_getattr(module)


def _plugin_names(module_name: str) -> list[str]:
    module = sys.modules.get(module_name)
    if module is None:
        module = import_domainbed(module_name)  # the hook (or the fallback below) patches it
        if module is None:
            return []
    if STATE not in module.__dict__:
        patch_module(module)
    return list(module.__dict__[STATE]["names"])


def _make_hparams(original):
    def _hparams(algorithm, dataset, random_seed):
        algorithm_fn = dataset_cls = None
        if algorithm in _plugin_names("domainbed.algorithms"):
            entry = plugin_entries("hparams").get(algorithm)
            algorithm_fn = entry.load() if entry is not None else None
        if dataset in _plugin_names("domainbed.datasets"):
            dataset_cls = resolve(sys.modules["domainbed.datasets"], dataset)
        if algorithm_fn is None and dataset_cls is None and algorithm not in _plugin_names("domainbed.algorithms"):
            return original(algorithm, dataset, random_seed)
        return hparams_table(algorithm, dataset, random_seed, base_fn=original, dataset_cls=dataset_cls,
                             algorithm_fn=algorithm_fn)

    return _hparams


def _patch_launchers(module: ModuleType) -> None:
    table, state = module.__dict__["REGISTRY"], _state(module)
    for name, entry in plugin_entries("launchers").items():
        if name in table and name not in state["launchers"]:
            _warn(f"ldr-plugin: command launcher '{name}' already exists in DomainBed; the plugin is ignored")
            continue

        def launcher(commands, _entry=entry):
            return _entry.load()(commands)

        setattr(launcher, MARK, True)
        table[name] = launcher
        if name not in state["launchers"]:
            state["launchers"].append(name)


def patch_module(module: ModuleType) -> None:
    """Patch one of DomainBed's four lookup modules (no-op for other modules; safe to repeat)."""
    if disabled_names() is None:
        return
    name = module.__name__
    if name in _LISTS:
        _patch_list_module(module)
    elif name == "domainbed.hparams_registry":
        _state(module)
        _wrap(module, "_hparams", _make_hparams)
    elif name == "domainbed.command_launchers":
        _patch_launchers(module)


def unpatch_module(module: ModuleType) -> None:
    """Undo :func:`patch_module`: remove added names and entries, restore wrapped functions."""
    state = module.__dict__.pop(STATE, None)
    if state is None:
        return
    if module.__name__ in _LISTS:
        listed = module.__dict__[_LISTS[module.__name__][1]]
        listed[:] = [n for n in listed if n not in state["names"]]
    for attr in state["attrs"]:
        module.__dict__.pop(attr, None)
    table = module.__dict__.get("REGISTRY")
    for key in state["launchers"]:
        if table is not None and getattr(table.get(key), MARK, False):
            del table[key]
    for attr in ("get_algorithm_class", "get_dataset_class", "_hparams", "__getattr__"):
        current = module.__dict__.get(attr)
        if current is not None and getattr(current, MARK, False):
            original = current.__wrapped__
            if original is None:
                del module.__dict__[attr]
            else:
                module.__dict__[attr] = original


def register() -> list[str]:
    """Install the import hook and patch DomainBed modules already imported; return their names."""
    if disabled_names() is None:
        return []
    try:
        import ldr_domainbed_hook

        ldr_domainbed_hook.install()
    except ImportError:
        _warn("ldr-plugin: the start-up hook module ldr_domainbed_hook is not importable; "
              "DomainBed modules imported later will not be patched")
    patched = [name for name in TARGETS if name in sys.modules]
    for name in patched:
        patch_module(sys.modules[name])
    return patched


def unregister() -> list[str]:
    """Remove the import hook and restore every patched DomainBed module; return their names."""
    try:
        import ldr_domainbed_hook

        ldr_domainbed_hook.uninstall()
    except ImportError:
        pass
    restored = [name for name in TARGETS if name in sys.modules and STATE in sys.modules[name].__dict__]
    for name in restored:
        unpatch_module(sys.modules[name])
    _entries_cache.clear()
    return restored
