"""``ldr leaderboard build`` as a user after ``pip install`` runs it: from an empty directory, shipped
specs by name, a rebuild command without install paths, and spec typos caught with close matches.

(tox and CI run the suite against a regular wheel install, so these tests exercise the installed
package there; in an editable checkout they exercise the checkout's ``registry/``.)
"""

from __future__ import annotations

import shlex
from pathlib import Path

from click.testing import CliRunner

from ldr_plugin.cli.leaderboard_cmd import leaderboard
from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep
from ldr_plugin.registry_files import registry_root, registry_spec, spec_argument


def _rebuild_command(readme: Path) -> list[str]:
    text = readme.read_text()
    return shlex.split(text.split("```sh\n", 1)[1].split("\n```", 1)[0])


def test_build_from_an_empty_directory_records_a_portable_command(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no registry/ here: the default specs come from the package
    sweep = str(shared_data / "domainbed" / "test_sweep_data")
    result = CliRunner().invoke(leaderboard, ["build", "--results", sweep, "--out", "out"])
    assert result.exit_code == 0, result.output
    command = _rebuild_command(tmp_path / "out" / "README.md")
    assert command == ["ldr", "leaderboard", "build", "domainbed_sweep", "kstar_vs_accuracy",
                       "--results", sweep, "--out", "out"]
    readme = (tmp_path / "out" / "README.md").read_text()
    assert str(registry_root()) not in readme and "site-packages" not in readme
    # the recorded command, run again (into another folder), gives the same tables
    again = CliRunner().invoke(leaderboard, [*command[2:-1], "out2"])
    assert again.exit_code == 0, again.output
    for name in ("domainbed_sweep.md", "domainbed_sweep.csv", "kstar_vs_accuracy.md", "index.html"):
        assert (tmp_path / "out2" / name).read_bytes() == (tmp_path / "out" / name).read_bytes(), name


def test_shipped_spec_by_name_and_unknown_spec_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert registry_spec("dg_study") == registry_spec("dg_study.toml")
    assert spec_argument(registry_spec("dg_study")) == "dg_study"
    assert spec_argument("elsewhere/dg_study.toml") == "elsewhere/dg_study.toml"  # not the shipped file
    result = CliRunner().invoke(leaderboard, ["build", "dg_stdy", "--out", "o"])
    assert result.exit_code != 0
    assert "did you mean: dg_study" in str(result.exception) + result.output


def _spec(tmp_path: Path, body: str) -> str:
    path = tmp_path / "spec.toml"
    path.write_text(f'[leaderboard]\nid = "t"\ntitle = "t"\nkind = "domainbed"\n{body}\n')
    return str(path)


def test_spec_typos_are_errors_with_close_matches(shared_data, tmp_path):
    sweep = str(shared_data / "domainbed" / "test_sweep_data")  # ERM on VLCS
    for body, expected in (('datasets = ["VLC"]', "unknown dataset in 'datasets' 'VLC'; did you mean: VLCS"),
                           ('algorithms = ["EMR"]', "unknown algorithm in 'algorithms' 'EMR'; did you mean: ERM")):
        result = CliRunner().invoke(leaderboard, ["build", _spec(tmp_path, body), "--results", sweep,
                                                  "--out", str(tmp_path / "o")])
        assert result.exit_code != 0 and expected in str(result.exception), (body, result.exception)
        assert not (tmp_path / "o" / "t.md").exists()


def test_known_names_without_results_are_reported_or_refused(shared_data, tmp_path):
    sweep = str(shared_data / "domainbed" / "test_sweep_data")
    out = tmp_path / "o"
    result = CliRunner().invoke(leaderboard, ["build", _spec(tmp_path, 'algorithms = ["ERM", "Mixup"]'),
                                              "--results", sweep, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "algorithm 'Mixup' (in 'algorithms') has no results" in result.output
    assert "algorithm 'Mixup'" in (out / "README.md").read_text()
    # only names without results: every table would be empty, so no build
    result = CliRunner().invoke(leaderboard, ["build", _spec(tmp_path, 'datasets = ["PACS"]'),
                                              "--results", sweep, "--out", str(tmp_path / "o2")])
    assert result.exit_code != 0 and "none of the spec's datasets ['PACS'] has results" in str(result.exception)


def test_collect_says_why_its_tables_are_empty(tmp_path):
    sweep = tmp_path / "sweep"
    write_synthetic_sweep(sweep, n_records=60, datasets={"RotatedDigitsFlat": 3}, algorithms=("ERM",), n_trials=1)
    result = CliRunner().invoke(leaderboard, ["collect", "--input_dir", str(sweep)])
    assert result.exit_code == 0
    assert ("RotatedDigitsFlat is not in DomainBed's dataset list, so every table above is empty "
            "(as collect_results does); pass --all-datasets") in result.output
    kept = CliRunner().invoke(leaderboard, ["collect", "--input_dir", str(sweep), "--all-datasets"])
    assert "RotatedDigitsFlat" in kept.output and "not in DomainBed's dataset list" not in kept.output
