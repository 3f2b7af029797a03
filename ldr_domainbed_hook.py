"""Start-up hook of ldr-plugin: registers DomainBed plugins when DomainBed's modules are imported.

Installed at the root of site-packages with ``ldr_domainbed_hook.pth`` (one ``import`` line) and
``ldr_domainbed_hook.start`` (``ldr_domainbed_hook:install``, Python >= 3.15, PEP 829), so it runs
in every interpreter, including the ones DomainBed's ``sweep`` starts. It imports only ``os`` and
``sys``, reads no entry points and imports neither torch, DomainBed nor ldr_plugin at start-up:
:func:`install` only puts a finder on ``sys.meta_path`` that reacts to four module names. When one
of them has been executed by its real loader, ``ldr_plugin.domainbed.register.patch_module``
patches it (entry points are read at that moment).

Opt-out: ``DOMAINBED_PLUGINS_DISABLE=1`` (or ``true``/``yes``/``all``/``*``) installs nothing;
a comma list of names (``DOMAINBED_PLUGINS_DISABLE=LatentDR,RotatedDigits``) skips those names.
Nothing here may break an interpreter: every failure becomes one line on stderr.
"""

import os
import sys

DISABLE_ENV = "DOMAINBED_PLUGINS_DISABLE"
TARGETS = frozenset(
    {"domainbed.algorithms", "domainbed.hparams_registry", "domainbed.datasets", "domainbed.command_launchers"}
)
_ALL = frozenset({"1", "true", "yes", "on", "all", "*"})


def disabled_names():
    """``None`` if everything is disabled, else the set of names to skip (possibly empty)."""
    raw = os.environ.get(DISABLE_ENV, "").strip()
    if raw.lower() in _ALL:
        return None
    return {name.strip() for name in raw.split(",") if name.strip() and name.strip().lower() not in {"0", "false", "no", "off"}}


def _report(message):
    try:
        sys.stderr.write(f"ldr-plugin: {message} (set {DISABLE_ENV}=1 to switch the DomainBed hook off)\n")
    except Exception:  # noqa: BLE001,S110 - stderr itself may be gone; never raise from the hook
        pass


class _PatchingLoader:
    """Runs the real loader, then patches the executed module."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if disabled_names() is None:
            return
        try:
            from ldr_plugin.domainbed.register import patch_module

            patch_module(module)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break DomainBed
            _report(f"could not register DomainBed plugins into {module.__name__}: {type(exc).__name__}: {exc}")

    def __getattr__(self, name):  # get_source, is_package, get_filename, ... of the real loader
        return getattr(self._loader, name)


def _is_ours(finder):
    return getattr(finder, "_ldr_domainbed_finder", False) is True


class DomainBedFinder:
    """A ``sys.meta_path`` finder that wraps the loader of DomainBed's registry modules."""

    _ldr_domainbed_finder = True

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in TARGETS:
            return None
        try:
            for finder in sys.meta_path:
                if _is_ours(finder) or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                        spec.loader = _PatchingLoader(spec.loader)
                    return spec
        except Exception as exc:  # noqa: BLE001
            _report(f"import hook failed for {fullname}: {type(exc).__name__}: {exc}")
        return None


def install():
    """Put the finder first on ``sys.meta_path`` (once), unless the opt-out variable disables it."""
    try:
        if disabled_names() is None:
            return
        if not any(_is_ours(finder) for finder in sys.meta_path):
            sys.meta_path.insert(0, DomainBedFinder())
    except Exception as exc:  # noqa: BLE001
        _report(f"could not install the DomainBed hook: {type(exc).__name__}: {exc}")


def uninstall():
    """Remove the finder from ``sys.meta_path`` (modules already patched stay patched)."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not _is_ours(finder)]
