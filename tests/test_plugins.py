"""Plugin groups (entry points), with fake distributions on sys.path."""

from __future__ import annotations

import sys

import pytest
from fakedist import make_distribution

from ldr_plugin.cli import main
from ldr_plugin.errors import LdrError, UnknownNameError
from ldr_plugin.plugins import GROUPS, ClashError, plugin_group


@pytest.fixture
def on_path(monkeypatch):
    def add(path):
        monkeypatch.syspath_prepend(str(path))
        return path

    return add


def test_builtins_are_declared_in_our_metadata():
    metrics = plugin_group("metrics").entries()
    assert {"kstar", "alignment", "uniformity"} <= set(metrics)
    assert all(e.distribution == "ldr-plugin" for e in metrics.values())
    assert "LatentDR" in plugin_group("algorithms").names()
    assert {"robustbench", "openclip", "domainbed"} <= set(plugin_group("models").names())


def test_third_party_entry_is_listed_and_loaded_lazily(tmp_path, on_path):
    on_path(
        make_distribution(
            tmp_path,
            "acme-metrics",
            {"ldr_plugin.metrics": {"acme_score": "acme_mod:AcmeScore"}},
            {"acme_mod": "LOADED = True\nclass AcmeScore:\n    family = 'acme'\n"},
        )
    )
    reg = plugin_group("ldr_plugin.metrics")
    assert reg.get("acme_score").distribution == "acme-metrics"
    assert "acme_mod" not in sys.modules  # listing does not import
    cls = reg.load("acme_score")
    assert cls.family == "acme" and "acme_mod" in sys.modules
    sys.modules.pop("acme_mod", None)


def test_clash_between_two_third_parties_names_both(tmp_path, on_path):
    on_path(make_distribution(tmp_path / "a", "dist-one", {"ldr_plugin.metrics": {"twin": "one:X"}}))
    on_path(make_distribution(tmp_path / "b", "dist-two", {"ldr_plugin.metrics": {"twin": "two:X"}}))
    with pytest.raises(ClashError) as info:
        plugin_group("metrics").get("twin")
    assert "dist-one" in str(info.value) and "dist-two" in str(info.value) and "twin" in str(info.value)


def test_builtin_wins_over_third_party_with_a_warning(tmp_path, on_path):
    on_path(make_distribution(tmp_path, "copycat", {"ldr_plugin.metrics": {"kstar": "copycat:KStar"}}))
    with pytest.warns(UserWarning, match="copycat"):
        entry = plugin_group("metrics").get("kstar")
    assert entry.distribution == "ldr-plugin"


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownNameError) as info:
        plugin_group("metrics").get("kstr")
    assert "kstar" in str(info.value) and "did you mean" in str(info.value)


def test_broken_provider_is_reported_by_name(tmp_path, on_path):
    on_path(make_distribution(tmp_path, "broken-dist", {"ldr_plugin.metrics": {"broken": "no_such_module_xyz:C"}}))
    with pytest.raises(LdrError, match="broken-dist"):
        plugin_group("metrics").load("broken")


def test_ldr_ls_shows_every_group_with_distribution(tmp_path, on_path, capsys):
    on_path(make_distribution(tmp_path, "acme-sources", {"ldr_plugin.model_sources": {"acme": "acme_src:Src"}}))
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for kind in GROUPS:
        assert kind in out
    assert "LatentDR" in out and "ldr-plugin" in out
    assert any(line.split()[:3] == ["models", "acme", "acme-sources"] for line in out.splitlines())


def test_ldr_ls_unknown_kind_is_a_usage_error(capsys):
    assert main(["ls", "nope"]) != 0
