"""The start-up hook and register()/unregister(), in fresh interpreters, on a stand-in DomainBed.

The stand-in (``domainbed_fake_dist.make_fake_host``) has DomainBed's registry layout without
torch, and a fake installed distribution declares third-party plugins, so these tests exercise
the real installed ``.pth`` hook exactly as DomainBed's scripts would meet it, in CI, fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from domainbed_fake_dist import make_fake_dist, make_fake_host

EXTRA = "Cyclic = toy_cyclic_mod:Cyclic\nERM = toy_plugin_mod:Toy\nBroken = no_such_module_xyz:Broken\n"
LAUNCHERS = "[domainbed.command_launchers]\ntoylaunch = toy_plugin_mod:toy_launcher\nlocal = toy_plugin_mod:toy_launcher\n"


@pytest.fixture
def run_py(tmp_path):
    """Run Python code in a fresh interpreter seeing the stand-in DomainBed and the fake plugin."""
    host = make_fake_host(tmp_path / "host")
    dist = make_fake_dist(tmp_path / "dist", extra_algorithms=EXTRA, extra_groups=LAUNCHERS)

    def run(code: str, **env_extra: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("DOMAINBED_DIR", "DOMAINBED_PLUGINS_DISABLE")}
        env["PYTHONPATH"] = os.pathsep.join([str(host), str(dist)])
        env["PYTHONWARNINGS"] = "default"
        env.update(env_extra)
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc

    return run


def _last_json(proc: subprocess.CompletedProcess):
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_hook_is_installed_and_imports_nothing_at_start(run_py):
    out = _last_json(run_py("""
        import json, sys
        print(json.dumps([any(getattr(f, "_ldr_domainbed_finder", False) for f in sys.meta_path),
                          sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "ldr_plugin", "domainbed", "numpy"))]))
    """))
    assert out == [True, []]


def test_plugins_registered_lazily_and_builtins_never_shadowed(run_py):
    proc = run_py("""
        import json, sys
        from domainbed import algorithms, datasets, command_launchers
        loaded_before = "toy_plugin_mod" in sys.modules
        toy = algorithms.get_algorithm_class("Toy")
        print(json.dumps({
            "algorithms": algorithms.ALGORITHMS, "datasets": datasets.DATASETS,
            "launchers": sorted(command_launchers.REGISTRY), "loaded_before": loaded_before,
            "toy": toy.__module__ + "." + toy.__name__, "attr": algorithms.Toy is toy,
            "erm": algorithms.ERM.__module__, "local": command_launchers.REGISTRY["local"].__module__,
            "digits_envs": datasets.num_environments("RotatedDigits"),
            "vars_dataset": type(vars(datasets)["CorruptedDigits"]).__name__,
        }))
    """)
    out = _last_json(proc)
    assert out["algorithms"][:2] == ["ERM", "Mixup"]
    assert {"Toy", "Cyclic", "LatentDR"} <= set(out["algorithms"]) and out["algorithms"].count("ERM") == 1
    assert out["datasets"][0] == "Debug28" and {"RotatedDigits", "CorruptedDigits"} <= set(out["datasets"])
    assert out["launchers"] == ["local", "slurm", "submitit_local", "toylaunch"]
    assert out["loaded_before"] is False and out["toy"] == "toy_plugin_mod.Toy" and out["attr"] is True
    assert out["erm"] == "domainbed.algorithms" and out["local"] == "domainbed.command_launchers"
    assert out["digits_envs"] == 6 and out["vars_dataset"] == "LazyPluginClass"
    assert "already defines 'ERM'" in proc.stderr and "launcher 'local' already exists" in proc.stderr


def test_plugin_hparams_on_top_of_base_with_domainbed_seeding(run_py):
    out = _last_json(run_py("""
        import json
        from domainbed import hparams_registry as h
        print(json.dumps({
            "toy_default": h.default_hparams("Toy", "Debug28"),
            "toy_random": h.random_hparams("Toy", "Debug28", 5),
            "erm_random": h.random_hparams("ERM", "Debug28", 5),
            "erm_digits": h.default_hparams("ERM", "RotatedDigits"),
            "mixup_vlcs": h.default_hparams("Mixup", "VLCS"),
            "types": sorted({type(v).__name__ for v in h.random_hparams("Toy", "Debug28", 5).values()}),
        }))
    """))
    assert out["toy_default"]["toy_lr"] == 0.1 and out["toy_default"]["toy_width"] == 32
    shared = {k: v for k, v in out["toy_random"].items() if not k.startswith("toy_")}
    assert shared == out["erm_random"]  # paired comparisons: ERM's keys identical for the same seed
    assert out["toy_random"]["toy_width"] in (16, 32, 64) and "numpy" not in " ".join(out["types"])
    # a plugin dataset takes DomainBed's base as RotatedMNIST (small images), then its own batch_size
    assert out["erm_digits"]["lr"] == 1e-3 and out["erm_digits"]["batch_size"] == 64
    assert out["mixup_vlcs"] == {"resnet_dropout": 0.0, "lr": 5e-5, "batch_size": 32, "mixup_alpha": 0.2}


def test_idempotent_under_reload_and_repeated_register(run_py):
    out = _last_json(run_py("""
        import importlib, json
        from domainbed import algorithms, datasets, hparams_registry
        from ldr_plugin.domainbed import register
        before = list(algorithms.ALGORITHMS), list(datasets.DATASETS)
        register.register(); register.register()
        for m in (algorithms, datasets, hparams_registry):
            importlib.reload(m)
        register.patch_module(algorithms)
        after = list(algorithms.ALGORITHMS), list(datasets.DATASETS)
        hp = hparams_registry.default_hparams("Toy", "Debug28")
        print(json.dumps([before == after, len(after[0]) == len(set(after[0])),
                          algorithms.get_algorithm_class("Toy").__name__, hp["toy_lr"]]))
    """))
    assert out == [True, True, "Toy", 0.1]


def test_unregister_restores_every_module(run_py):
    out = _last_json(run_py("""
        import importlib, json, sys
        sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "_ldr_domainbed_finder", False)]
        def snapshot():
            mods = [importlib.import_module("domainbed." + n)
                    for n in ("algorithms", "datasets", "hparams_registry", "command_launchers")]
            return {m.__name__: {k: (id(v), list(v) if isinstance(v, (list, dict)) else None)
                                 for k, v in vars(m).items()} for m in mods}
        clean = snapshot()
        from ldr_plugin.domainbed import register
        register.register()
        patched = snapshot()
        from domainbed import algorithms
        algorithms.get_algorithm_class("Toy")
        register.unregister()
        print(json.dumps([clean != patched, snapshot() == clean,
                          any(getattr(f, "_ldr_domainbed_finder", False) for f in sys.meta_path)]))
    """))
    assert out == [True, True, False]


def test_opt_out_all_and_by_name(run_py):
    code = """
        import json, sys
        from domainbed import algorithms, datasets
        print(json.dumps([algorithms.ALGORITHMS, datasets.DATASETS,
                          any(getattr(f, "_ldr_domainbed_finder", False) for f in sys.meta_path)]))
    """
    algs, dsets, hooked = _last_json(run_py(code, DOMAINBED_PLUGINS_DISABLE="1"))
    assert algs == ["ERM", "Mixup"] and dsets == ["Debug28"] and hooked is False
    algs, dsets, hooked = _last_json(run_py(code, DOMAINBED_PLUGINS_DISABLE="Toy, RotatedDigits,NoSuchPlugin"))
    assert "Toy" not in algs and "LatentDR" in algs and "Cyclic" in algs and hooked is True
    assert "RotatedDigits" not in dsets and "CorruptedDigits" in dsets


def test_broken_plugin_or_hook_never_breaks_the_interpreter(run_py):
    out = _last_json(run_py("""
        import json
        from domainbed import algorithms
        try:
            algorithms.get_algorithm_class("Broken")
            error = None
        except Exception as exc:
            error = type(exc).__name__ + ": " + str(exc)
        print(json.dumps([algorithms.get_algorithm_class("Toy").__name__, error]))
    """))
    assert out[0] == "Toy"
    assert out[1].startswith("LdrError") and "no_such_module_xyz" in out[1] and "toyplugin" in out[1]
    proc = run_py("""
        import ldr_plugin.domainbed.register as r
        def boom(module):
            raise RuntimeError("plugin exploded")
        r.patch_module = boom
        from domainbed import algorithms
        print(algorithms.ALGORITHMS)
    """)
    assert "['ERM', 'Mixup']" in proc.stdout and "plugin exploded" in proc.stderr


def test_import_cycle_plugin_imported_first(run_py):
    """A plugin module that imports domainbed.algorithms at its top can be imported before DomainBed."""
    out = _last_json(run_py("""
        import json
        import toy_cyclic_mod
        from domainbed import algorithms
        cls = algorithms.get_algorithm_class("Cyclic")
        print(json.dumps([cls is toy_cyclic_mod.Cyclic, "Cyclic" in cls.host_names]))
    """))
    assert out == [True, True]


def test_lazy_launcher_runs_plugin(run_py):
    proc = run_py("""
        from domainbed import command_launchers
        command_launchers.REGISTRY["toylaunch"](["echo hi"])
    """)
    assert "toy launcher: echo hi" in proc.stdout


def test_wheel_ships_hook_files_at_its_root():
    """pyproject force-includes the hook module, .pth and .start at the wheel root; their lines run it."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    forced = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    hook_files = {"ldr_domainbed_hook.pth", "ldr_domainbed_hook.py", "ldr_domainbed_hook.start"}
    by_target = {target: (root / source).read_text().strip() for source, target in forced.items() if target in hook_files}
    assert set(by_target) == hook_files
    assert by_target["ldr_domainbed_hook.pth"] == "import ldr_domainbed_hook; ldr_domainbed_hook.install()"
    assert by_target["ldr_domainbed_hook.start"] == "ldr_domainbed_hook:install"


def test_installed_hook_is_current():
    """The hook copy in site-packages (editable installs copy it) is this checkout's module."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("ldr_domainbed_hook")
    if spec is None or spec.origin is None:
        pytest.skip("ldr-plugin's hook is not installed in this environment")
    source = Path(__file__).resolve().parents[1] / "ldr_domainbed_hook.py"
    assert Path(spec.origin).read_text() == source.read_text(), "re-install: pip install -e . --no-deps"
