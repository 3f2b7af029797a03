"""Sweeps of different protocols are never pooled silently; ``ldr leaderboard compare`` sets them side by
side with per-trial paired differences, checked against DomainBed-formula tables of each trial alone
and scipy's paired t-test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from ldr_plugin.cli.leaderboard_cmd import leaderboard
from ldr_plugin.domainbed.compare import compare_sweeps
from ldr_plugin.domainbed.runs import Sweep, read_sweep
from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep
from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables
from ldr_plugin.errors import LdrError


def _sweep(root: Path, seed: int, steps: int, n_trials: int = 3, **edit) -> Path:
    """A complete synthetic VLCS sweep (ERM, LatentDR; one hparams seed), its args.steps set to ``steps``."""
    write_synthetic_sweep(root, n_records=2 * n_trials * 10 * 5, seed=seed, datasets={"VLCS": 4},
                          algorithms=("ERM", "LatentDR"), n_trials=n_trials)
    for path in root.glob("*/results.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            record["args"].update(steps=steps, **edit)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def _build_with_baseline(tmp_path: Path, sweep: Path, name: str = "out") -> Path:
    """`ldr leaderboard build` of a spec with training-domain validation and baseline ERM."""
    spec = tmp_path / "spec.toml"
    spec.write_text('[leaderboard]\nid = "t"\ntitle = "t"\nkind = "domainbed"\nselection = ["iid"]\nbaseline = "ERM"\n')
    result = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(sweep), "--out", str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    return tmp_path / name


def _avg(records: list[dict], algorithm: str) -> float:
    """The Averages table's Avg (DomainBed's formula) of these records."""
    table = next(t for t in domainbed_tables(SweepSelection.build(Sweep(records=records))) if t.table_id == "averages__iid")
    return next(r.cells[-1].value for r in table.rows if r.label == algorithm)


def test_build_refuses_to_pool_sweeps_of_different_step_counts(tmp_path):
    a, b = _sweep(tmp_path / "s200", 0, 200), _sweep(tmp_path / "s5001", 1, 5001)
    spec = tmp_path / "spec.toml"
    spec.write_text('[leaderboard]\nid = "t"\ntitle = "t"\nkind = "domainbed"\n')
    result = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(a), "--results", str(b),
                                              "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    message = str(result.exception)
    assert "mix runs of different protocols" in message and "VLCS / ERM: steps 200 vs 5001" in message
    assert not (tmp_path / "out" / "t.md").exists()
    # one protocol per build is fine
    ok = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(a), "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.output


def test_other_protocol_fields_and_resolved_hparams_are_not_pooled(tmp_path):
    a = _sweep(tmp_path / "a", 0, 200)
    b = _sweep(tmp_path / "b", 1, 200, holdout_fraction=0.1, dataset_version="2")
    with pytest.raises(LdrError, match=r'dataset_version null vs "2"; holdout_fraction 0.2 vs 0.1'):
        compare_sweeps([("ab", [str(a), str(b)]), ("b", [str(b)])])
    # same arguments, but one run resolved other hyperparameters (other code, say): named
    c = _sweep(tmp_path / "c", 0, 200)
    first = min(c.glob("*/results.jsonl"))
    records = [json.loads(line) for line in first.read_text().splitlines()]
    for record in records:
        record["hparams"]["lr"] = 0.5
    first.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(LdrError, match=r"resolved different hyperparameters \(lr"):
        compare_sweeps([("c", [str(c)]), ("a", [str(a)])])


def test_collect_keeps_domainbed_text_and_warns_on_stderr(tmp_path):
    a, b = _sweep(tmp_path / "s200", 0, 200), _sweep(tmp_path / "s5001", 1, 5001)
    both = tmp_path / "both"
    both.mkdir()
    for run in [*a.iterdir(), *b.iterdir()]:
        (both / f"{run.parent.name}_{run.name}").symlink_to(run)
    result = CliRunner().invoke(leaderboard, ["collect", "--input_dir", str(both)])
    assert result.exit_code == 0
    assert "warning: these tables pool runs of different protocols" in result.stderr
    assert "steps 200 vs 5001" in result.stderr and "Total records: 600" in result.stdout


def test_compare_paired_differences_match_per_trial_tables_and_scipy(tmp_path):
    a, b = _sweep(tmp_path / "s200", 0, 200), _sweep(tmp_path / "s5001", 1, 5001)
    c = compare_sweeps([("200", [str(a)]), ("5001", [str(b)])])
    assert c.differences["5001"] == ["steps 200 vs 5001"]
    rows = {r.algorithm: r for r in c.rows["5001"]}
    assert set(rows) == {"ERM", "LatentDR"}
    records = {label: read_sweep(str(d), progress=False).records for label, d in (("a", a), ("b", b))}
    for algorithm, row in rows.items():
        per_trial = {}
        for trial in range(3):
            one = {k: [r for r in v if r["args"]["trial_seed"] == trial] for k, v in records.items()}
            per_trial[trial] = (_avg(one["a"], algorithm), _avg(one["b"], algorithm))
        assert row.diff.n == 3
        for trial, (x, y) in per_trial.items():
            assert row.diff.per_trial[trial] == pytest.approx(y - x, abs=1e-9)
        x, y = np.array([v[0] for v in per_trial.values()]), np.array([v[1] for v in per_trial.values()])
        test = stats.ttest_rel(y, x)
        assert row.diff.mean == pytest.approx((y - x).mean())
        assert row.diff.se == pytest.approx((y - x).mean() / test.statistic)
        # the levels are the Averages tables' numbers of each whole sweep
        assert row.base[0] == pytest.approx(_avg(records["a"], algorithm))
        assert row.other[0] == pytest.approx(_avg(records["b"], algorithm))


def test_compare_cli_labels_json_and_one_trial(tmp_path):
    a, b = _sweep(tmp_path / "s200", 0, 200), _sweep(tmp_path / "s5001", 1, 5001, n_trials=1)
    text = CliRunner().invoke(leaderboard, ["compare", "--results", f"200={a}", "--results", f"5001={b}"])
    assert text.exit_code == 0, text.output
    assert "5001 vs 200: steps 200 vs 5001" in text.output
    assert "(n=1, no SE) paired" in text.output  # one trial pairs up: no error bar, said so
    as_json = CliRunner().invoke(leaderboard, ["compare", str(a), str(b), "--json"])
    data = json.loads(as_json.stdout)
    assert data["baseline"] == "s200" and data["sides"]["s5001"]["protocol_differences"] == ["steps 200 vs 5001"]
    erm = next(r for r in data["sides"]["s5001"]["rows"] if r["algorithm"] == "ERM")
    assert erm["diff"]["n_pairs"] == 1 and erm["diff"]["se"] is None
    bad = CliRunner().invoke(leaderboard, ["compare", "--results", str(a)])
    assert bad.exit_code == 2 and "expected LABEL=DIR" in bad.output


def test_spec_baseline_adds_a_paired_delta_column(tmp_path):
    import csv

    a = _sweep(tmp_path / "s", 0, 200)
    out = _build_with_baseline(tmp_path, a)
    with (out / "t.csv").open() as handle:
        cells = {(r["table"], r["row"]): r for r in csv.DictReader(handle) if r["column"].startswith("Δ vs ERM")}
    records = read_sweep(str(a), progress=False).records
    x = np.array([_avg([r for r in records if r["args"]["trial_seed"] == t], "ERM") for t in range(3)])
    y = np.array([_avg([r for r in records if r["args"]["trial_seed"] == t], "LatentDR") for t in range(3)])
    for table in ("averages__iid", "VLCS__iid"):  # one dataset: the same per-trial means
        got = cells[(table, "LatentDR")]
        assert float(got["value"]) == pytest.approx((y - x).mean())
        assert float(got["err"]) == pytest.approx((y - x).mean() / stats.ttest_rel(y, x).statistic)
        assert got["n"] == "3" and cells[(table, "ERM")]["value"] == ""  # the baseline itself: —
    bad = tmp_path / "bad.toml"
    bad.write_text('[leaderboard]\nid = "t"\ntitle = "t"\nkind = "domainbed"\nbaseline = "EMR"\n')
    result = CliRunner().invoke(leaderboard, ["build", str(bad), "--results", str(a), "--out", str(tmp_path / "o2")])
    assert result.exit_code != 0 and "did you mean: ERM" in str(result.exception)


def test_spec_trials_keeps_those_trial_seeds_only(tmp_path):
    """`trials = [0, 1]`: the table is the one the records of trials 0 and 1 alone give (DomainBed's
    formula on those records), and the build says so; an unfinished third trial does not enter it."""
    import csv

    a = _sweep(tmp_path / "s", 0, 200)
    for path in a.glob("*/results.jsonl"):  # trial 2 still running: no done files
        if json.loads(path.read_text().splitlines()[0])["args"]["trial_seed"] == 2:
            (path.parent / "done").unlink(missing_ok=True)
    spec = tmp_path / "spec.toml"
    spec.write_text('[leaderboard]\nid = "t"\ntitle = "t"\nkind = "domainbed"\nselection = ["iid"]\n'
                    'baseline = "ERM"\ntrials = [0, 1]\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(a), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "t.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    records = [r for r in read_sweep(str(a), progress=False).records if r["args"]["trial_seed"] in (0, 1)]
    avg = {r["row"]: float(r["value"]) for r in rows if r["table"] == "averages__iid" and r["column"] == "Avg"}
    assert avg["ERM"] == pytest.approx(_avg(records, "ERM"), abs=0.051)  # the table rounds to 0.1
    assert avg["LatentDR"] == pytest.approx(_avg(records, "LatentDR"), abs=0.051)
    delta = next(r for r in rows if r["table"] == "averages__iid" and r["row"] == "LatentDR"
                 and r["column"].startswith("Δ vs ERM"))
    assert delta["n"] == "2"
    assert "Trials 0, 1 only" in (out / "README.md").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text('[leaderboard]\nid = "t"\ntitle = "t"\nkind = "domainbed"\ntrials = [-1]\n')
    result = CliRunner().invoke(leaderboard, ["build", str(bad), "--results", str(a), "--out", str(tmp_path / "o2")])
    assert result.exit_code != 0


def test_a_trial_with_an_unfinished_run_is_left_out_of_the_pairing_and_named(tmp_path):
    """One LatentDR run of trial 1 without `done`: its Averages cell is flagged (as before), and the
    paired differences (`compare` and the spec's Δ column) use trials 0 and 2 only, with the same
    per-trial numbers as the complete sweep, and say which trial was left out."""
    import csv

    base = _sweep(tmp_path / "base", 1, 200)  # other records: the per-trial differences are not 0
    done = _sweep(tmp_path / "done", 0, 200)
    partial = _sweep(tmp_path / "partial", 0, 200)  # the same records as done
    args = {p.parent: json.loads(p.read_text().splitlines()[0])["args"] for p in partial.glob("*/results.jsonl")}
    unfinished = min(run for run, a in args.items() if (a["algorithm"], a["trial_seed"]) == ("LatentDR", 1))
    (unfinished / "done").unlink()
    rows = {r.algorithm: r for r in compare_sweeps([("a", [str(base)]), ("b", [str(partial)])]).rows["b"]}
    assert rows["ERM"].diff.n == 3 and rows["ERM"].left_out == ()
    latentdr = rows["LatentDR"]
    assert latentdr.left_out == (1,) and latentdr.diff.n == 2 and set(latentdr.diff.per_trial) == {0, 2}
    base_records, done_records = (read_sweep(str(s), progress=False).records for s in (base, done))
    expected = {t: _avg([r for r in done_records if r["args"]["trial_seed"] == t], "LatentDR")
                - _avg([r for r in base_records if r["args"]["trial_seed"] == t], "LatentDR") for t in (0, 2)}
    assert all(abs(v) > 0.5 for v in expected.values())  # the check below can tell trials apart
    assert latentdr.diff.per_trial == pytest.approx(expected, abs=0.11)  # each table value rounds to 0.1
    assert latentdr.other[2] == 2
    text = CliRunner().invoke(leaderboard, ["compare", "--results", f"a={done}", "--results", f"b={partial}"])
    assert "trial 1 left out (a run unfinished or not started)" in text.output

    for sweep, name in ((done, "out_done"), (partial, "out_partial")):
        _build_with_baseline(tmp_path, sweep, name)
    cells = {}
    for name in ("out_done", "out_partial"):
        with (tmp_path / name / "t.csv").open() as handle:
            cells[name] = next(r for r in csv.DictReader(handle) if r["table"] == "averages__iid"
                               and r["row"] == "LatentDR" and r["column"].startswith("Δ vs ERM"))
    assert cells["out_done"]["n"] == "3" and "trials_left_out" not in cells["out_done"]["flags"]
    got = cells["out_partial"]
    assert got["n"] == "2" and "trials_left_out" in got["flags"]
    records = read_sweep(str(done), progress=False).records
    d = np.array([_avg([r for r in records if r["args"]["trial_seed"] == t], "LatentDR")
                  - _avg([r for r in records if r["args"]["trial_seed"] == t], "ERM") for t in (0, 2)])
    assert float(got["value"]) == pytest.approx(d.mean())
    assert "left out" in (tmp_path / "out_partial" / "t.md").read_text()


def test_paired_differences_get_a_forest_plot_with_the_decision_rule(tmp_path):
    """The spec's baseline adds one forest plot per selection method (every dataset's Δ column, ±2 SE);
    what it draws is the Δ cells: detected iff |mean| > 2 SE, rows with fewer than 2 pairs listed, not drawn."""
    from ldr_plugin.leaderboard.plots import paired_points, plot_paired_differences
    from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table

    a = _sweep(tmp_path / "s", 0, 200)
    out = _build_with_baseline(tmp_path, a)
    svg = (out / "plots" / "t__delta__iid.svg").read_text()
    assert "LatentDR" in svg and "VLCS" in svg and "plots/t__delta__iid.svg" in (out / "t.md").read_text()

    column = "Δ vs ERM (paired over trials)"
    table = Table(table_id="VLCS__iid", title="Dataset: VLCS, model selection method: x", columns=[Column(column)],
                  rows=[Row("A", [Cell(value=1.0, err=0.4)], "s"), Row("B", [Cell(value=-1.0, err=0.6)], "s"),
                        Row("C", [Cell(value=2.0)], "s"), Row("ERM", [Cell(missing="—")], "s"),
                        Row("P", [Cell(value=9.0, err=0.1)], "s", published=True)])
    points, skipped = paired_points(table, column, baseline="ERM")
    assert points == [("A", 1.0, 0.4, True), ("B", -1.0, 0.6, False)] and skipped == ["C"]
    assert paired_points(table, column)[1] == ["C", "ERM"]
    assert plot_paired_differences([table], column, tmp_path / "p.svg") is not None
    empty = Table(table_id="x", title="x", columns=[Column(column)], rows=[Row("C", [Cell(value=2.0)], "s")])
    assert plot_paired_differences([empty], column, tmp_path / "q.svg") is None and not (tmp_path / "q.svg").exists()

    def size(n: int) -> tuple[float, float]:  # the SVG's width and height (pt) of n dataset panels
        tables = [Table(table_id=f"D{i}__iid", title=f"Dataset: D{i}, model selection method: x",
                        columns=table.columns, rows=table.rows) for i in range(n)]
        svg = plot_paired_differences(tables, column, tmp_path / f"n{n}.svg").read_text()
        assert all(f"D{i}" in svg for i in range(n))
        head = svg[svg.index("<svg"):]
        return tuple(float(head.split(f'{k}="')[1].split("pt")[0]) for k in ("width", "height"))

    (w3, h3), (w7, h7) = size(3), size(7)  # 7 panels: three rows of at most 3, not one wide strip
    assert w7 < 1.1 * w3 and h7 > 2.5 * h3


def _grid_sweep(root: Path, values: dict[int, int], seed: int = 0) -> Path:
    """A synthetic VLCS sweep of 3 hparams seeds whose ``--hparams`` override fixes ``ldr_start_step``
    to ``values[hparams seed]`` (a grid run one sweep per point, as studies/delayed_start.sh does)."""
    write_synthetic_sweep(root, n_records=3 * 2 * 3 * 10 * 5, seed=seed, datasets={"VLCS": 4},
                          algorithms=("ERM", "LatentDR"), n_trials=3)
    for path in root.glob("*/results.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            start = values[record["args"]["hparams_seed"]]
            record["args"].update(steps=200, hparams=json.dumps({"batch_size": 32, "ldr_start_step": start}))
            record["hparams"].update(batch_size=32, ldr_start_step=start)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def test_a_grid_set_by_hparams_is_one_row_only_when_the_spec_names_it(tmp_path):
    """Grid points fixed per hparams seed by --hparams differ in args.hparams: refused as mixed protocols
    unless the spec names the grid field; then the row is DomainBed's selection over all points (its
    Averages formula on every record), and any other override difference is still refused."""
    import csv

    sweep = _grid_sweep(tmp_path / "grid", {0: 0, 1: 20, 2: 100})
    records = read_sweep(str(sweep), progress=False).records
    assert {r["args"]["hparams_seed"] for r in records} == {0, 1, 2}
    spec = tmp_path / "spec.toml"
    head = '[leaderboard]\nid = "t"\ntitle = "t"\nkind = "domainbed"\nselection = ["iid"]\n'
    spec.write_text(head)
    refused = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(sweep), "--out", str(tmp_path / "o1")])
    assert refused.exit_code != 0 and "mix runs of different protocols" in str(refused.exception)
    assert "hparams.ldr_start_step 0 vs 20" in str(refused.exception)

    spec.write_text(head + 'hparams_grid = ["ldr_start_step"]\n')
    built = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(sweep), "--out", str(tmp_path / "o2")])
    assert built.exit_code == 0, built.output
    with (tmp_path / "o2" / "t.csv").open() as handle:
        cells = {r["row"]: r for r in csv.DictReader(handle) if r["table"] == "averages__iid" and r["column"] == "Avg"}
    for algorithm in ("ERM", "LatentDR"):
        pooled = _avg(records, algorithm)
        assert float(cells[algorithm]["value"]) == pytest.approx(pooled, abs=0.051)
        # selection over the grid is not the first grid point alone (the check above can fail)
        alone = _avg([r for r in records if r["args"]["hparams_seed"] == 0], algorithm)
        assert abs(pooled - alone) > 0.1
    assert "A grid over `ldr_start_step` ∈ {0, 20, 100} (set per" in (tmp_path / "o2" / "README.md").read_text()

    def set_override(sweep: Path, seed: int, override: dict, first_only: bool) -> None:
        """Give runs of hparams seed ``seed`` (the first in name order only, or all) this override."""
        paths = sorted(p for p in sweep.glob("*/results.jsonl")
                       if json.loads(p.read_text().splitlines()[0])["args"]["hparams_seed"] == seed)
        for path in paths[:1] if first_only else paths:
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            for record in lines:
                record["args"]["hparams"] = json.dumps(override)
                record["hparams"].update(override)
            path.write_text("".join(json.dumps(r) + "\n" for r in lines))

    # another override field differing between grid points is a different protocol still
    other = _grid_sweep(tmp_path / "other", {0: 0, 1: 20, 2: 100})
    set_override(other, 2, {"batch_size": 64, "ldr_start_step": 100}, first_only=False)
    again = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(other), "--out", str(tmp_path / "o3")])
    assert again.exit_code != 0 and "hparams.batch_size 32 vs 64" in str(again.exception)

    # two grid values under one (hparams seed, trial): the resolved hyperparameters disagree
    clash = _grid_sweep(tmp_path / "clash", {0: 0, 1: 20, 2: 100})
    set_override(clash, 1, {"batch_size": 32, "ldr_start_step": 999}, first_only=True)
    clashed = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(clash), "--out", str(tmp_path / "o4")])
    assert clashed.exit_code != 0 and "resolved different hyperparameters (ldr_start_step" in str(clashed.exception)


def test_protocol_leaves_out_grid_fields_only_and_describes_overrides_field_by_field():
    from ldr_plugin.domainbed.protocols import describe, protocol

    def rec(hparams, **args):
        return {"args": {"steps": 200, "seed": 5, "hparams": hparams, **args}}

    grid = frozenset({"ldr_start_step"})
    # no override and an override of grid fields only are the same protocol under the grid, not without it
    assert protocol(rec(None), grid) == protocol(rec('{"ldr_start_step": 60}'), grid)
    assert protocol(rec(None)) != protocol(rec('{"ldr_start_step": 60}'))
    # key order and spacing of the JSON text do not make another protocol under the grid
    assert protocol(rec('{"lr":0.1,"ldr_start_step":1}'), grid) == protocol(rec('{"ldr_start_step": 2, "lr": 0.1}'), grid)
    # a non-grid field still does; so does steps
    assert protocol(rec('{"lr": 0.1}'), grid) != protocol(rec('{"lr": 0.01}'), grid)
    assert protocol(rec(None, steps=5001), grid) != protocol(rec(None), grid)
    # an override that is not a JSON object is kept as text
    assert protocol(rec("not json"), grid)["hparams"] == "not json"
    assert describe(protocol(rec('{"lr": 0.1, "batch_size": 32}')), protocol(rec('{"batch_size": 64, "lr": 0.1}'))) \
        == "hparams.batch_size 32 vs 64"
    assert describe({"hparams": "x"}, {"hparams": '{"lr": 1}'}) == 'hparams "x" vs "{\\"lr\\": 1}"'


def test_compare_of_grid_sweeps_selects_over_the_grid_only_when_named(tmp_path):
    """Two grid sweeps (different step counts) are refused as mixed unless --hparams_grid names the grid
    field; then each side's level is DomainBed's selection over all its grid points (the Averages
    formula on every record, not the first point's), and the step count is still the stated difference."""
    a = _grid_sweep(tmp_path / "a", {0: 0, 1: 20, 2: 100})
    b = _grid_sweep(tmp_path / "b", {0: 0, 1: 20, 2: 100}, seed=1)
    for path in b.glob("*/results.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            record["args"]["steps"] = 5001
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = ["compare", "--results", f"200={a}", "--results", f"5001={b}"]
    refused = CliRunner().invoke(leaderboard, args)
    assert refused.exit_code != 0 and "hparams.ldr_start_step 0 vs 20" in str(refused.exception)
    text = CliRunner().invoke(leaderboard, [*args, "--hparams_grid", "ldr_start_step"])
    assert text.exit_code == 0, text.output
    assert "5001 vs 200: steps 200 vs 5001\n" in text.output and "a grid over ldr_start_step" in text.output
    data = json.loads(CliRunner().invoke(leaderboard, [*args, "--hparams_grid", "ldr_start_step", "--json"]).stdout)
    assert data["hparams_grid"] == ["ldr_start_step"]
    assert data["grid_values"] == {"200": {"ldr_start_step": [0, 20, 100]}, "5001": {"ldr_start_step": [0, 20, 100]}}
    assert "\n200: grid ldr_start_step in {0, 20, 100}\n" in text.output
    rows = {r["algorithm"]: r for r in data["sides"]["5001"]["rows"]}
    records = {side: read_sweep(str(d), progress=False).records for side, d in (("a", a), ("b", b))}
    for algorithm, row in rows.items():
        for side, level in (("a", row["base"]), ("b", row["other"])):
            pooled = _avg(records[side], algorithm)
            assert level["mean"] == pytest.approx(pooled, abs=0.051)
        alone = _avg([r for r in records["b"] if r["args"]["hparams_seed"] == 0], algorithm)
        assert abs(row["other"]["mean"] - alone) > 0.1  # the grid was used, not one point of it



def test_a_baseline_of_another_budget_is_refused_not_paired(tmp_path):
    """ERM at 200 steps in one folder, LatentDR at 5001 in another: no row mixes protocols, but the spec's
    Δ vs ERM column would pair two budgets; refused, naming them (the same sweeps at one budget build)."""
    a, b = _sweep(tmp_path / "a", 0, 200), _sweep(tmp_path / "b", 1, 5001)
    for root, drop in ((a, "LatentDR"), (b, "ERM")):
        for path in root.glob("*/results.jsonl"):
            if json.loads(path.read_text().splitlines()[0])["args"]["algorithm"] == drop:
                shutil.rmtree(path.parent)
    spec = tmp_path / "spec.toml"
    spec.write_text('[leaderboard]\nid = "t"\ntitle = "t"\nkind = "domainbed"\nselection = ["iid"]\nbaseline = "ERM"\n')
    refused = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(a), "--results", str(b),
                                               "--out", str(tmp_path / "o1")])
    assert refused.exit_code != 0 and "VLCS / LatentDR vs ERM: steps 200 vs 5001" in str(refused.exception)
    assert not (tmp_path / "o1").exists()
    _sweep(tmp_path / "b2", 1, 200)
    built = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(a), "--results", str(tmp_path / "b2"),
                                             "--out", str(tmp_path / "o2")])
    assert built.exit_code == 0, built.output


def test_spec_test_envs_holds_out_those_domains_only(tmp_path):
    """A study holding out only domains 0 and 3 of VLCS (as the CNN extremes study does with two
    rotations): with `test_envs = { VLCS = [0, 3] }` the table shows those columns, runs with other test
    domains are left out, and the Δ column pairs trials complete over those two domains, equal to
    DomainBed's formula on those runs' records; a trial missing one of them is left out. Without the
    option no LatentDR trial is complete (DomainBed's Avg is X), so no Δ; ERM's runs holding out
    domains 1 and 2 count there, and not with the option."""
    import csv

    a = _sweep(tmp_path / "s", 0, 200)
    runs = {p.parent: json.loads(p.read_text().splitlines()[0])["args"] for p in a.glob("*/results.jsonl")}
    for run, args in runs.items():  # singles only; LatentDR holds out 0 and 3 only, and misses 3 in trial 2
        latentdr = args["algorithm"] == "LatentDR"
        if (len(args["test_envs"]) > 1 or (latentdr and args["test_envs"] in ([1], [2]))
                or (latentdr, args["trial_seed"], args["test_envs"]) == (True, 2, [3])):
            shutil.rmtree(run)
    kept = [r for r in read_sweep(str(a), progress=False).records if r["args"]["test_envs"] in ([0], [3])]

    def trial_avg(trial: int, algorithm: str) -> float:
        return _avg([r for r in kept if r["args"]["trial_seed"] == trial], algorithm)

    spec = tmp_path / "spec.toml"
    head = '[leaderboard]\nid = "t"\ntitle = "t"\nkind = "domainbed"\nselection = ["iid"]\nbaseline = "ERM"\n'
    spec.write_text(head + "test_envs = { VLCS = [3, 0] }\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(a), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "t.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted({r["column"] for r in rows if r["table"] == "VLCS__iid"} - {"Avg", "Δ vs ERM (paired over trials)"}) \
        == ["C", "V"]  # VLCS's domains 0 and 3 (Caltech101, VOC2007), and no others
    avg = {r["row"]: float(r["value"]) for r in rows if r["table"] == "averages__iid" and r["column"] == "Avg"}
    assert avg["ERM"] == pytest.approx(_avg(kept, "ERM"), abs=0.051)
    delta = next(r for r in rows if r["table"] == "averages__iid" and r["row"] == "LatentDR"
                 and r["column"].startswith("Δ vs ERM"))
    d = np.array([trial_avg(t, "LatentDR") - trial_avg(t, "ERM") for t in (0, 1)])  # trial 2 incomplete
    assert delta["n"] == "2" and float(delta["value"]) == pytest.approx(d.mean())
    assert float(delta["err"]) == pytest.approx(d.std(ddof=1) / np.sqrt(2))
    readme = (out / "README.md").read_text()
    assert "VLCS: held-out domains 0 (C), 3 (V) only (the spec's `test_envs`)" in readme
    text = (out / "t.domainbed.txt").read_text()  # collect_results's text: every run and domain, as DomainBed
    header = next(line for line in text.splitlines() if line.startswith("Algorithm"))
    assert header.split()[1:] == ["C", "L", "S", "V", "Avg"]
    assert text.startswith(f"Total records: {len(read_sweep(str(a), progress=False).records)}\n")

    spec.write_text(head)  # without the option: no LatentDR trial has every domain of VLCS
    without = tmp_path / "without"
    assert CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(a), "--out", str(without)]).exit_code == 0
    with (without / "t.csv").open() as handle:
        assert all(r["value"] == "" for r in csv.DictReader(handle) if r["column"].startswith("Δ vs ERM"))

    spec.write_text(head + "test_envs = { VLCS = [0, 7] }\n")
    bad = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(a), "--out", str(tmp_path / "bad")])
    assert bad.exit_code != 0 and "'test_envs'" in str(bad.exception) and "0..3" in str(bad.exception)
    assert not (tmp_path / "bad").exists()
    for line, named in (("test_envs = { VLCX = [0] }", "dataset 'VLCX' has no runs here"),
                        ("test_envs = { RotatedDigits = [0] }", "'test_envs' names dataset 'RotatedDigits', which has no runs"),
                        ('env_names = { VLCS = ["C", "L", "V"] }', "'env_names.VLCS' has 3 names; VLCS has 4")):
        spec.write_text(head + line + "\n")
        bad = CliRunner().invoke(leaderboard, ["build", str(spec), "--results", str(a), "--out", str(tmp_path / "bad")])
        assert bad.exit_code != 0 and named in str(bad.exception), str(bad.exception)
        assert not (tmp_path / "bad").exists()
