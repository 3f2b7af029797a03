"""Cross-model tables (Γ′ joined with published accuracy), rank correlations, and k* columns of DomainBed runs."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from ldr_plugin.domainbed.extras import selected_checkpoints
from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.tables import SweepSelection
from ldr_plugin.leaderboard.build import build_leaderboards
from ldr_plugin.leaderboard.correlation import rank_correlation, stratified_rank_correlation
from ldr_plugin.results import metric, new_record, write_record

MODELS = {  # RobustBench cifar10 Linf entries (published clean / AutoAttack in the shared data) -> Γ′
    "robustbench:cifar10/Linf/Carmon2019Unlabeled": 0.9,
    "robustbench:cifar10/Linf/Standard": 1.7,
    "robustbench:cifar10/Linf/Engstrom2019Robustness": 1.1,
    "robustbench:cifar10/Linf/Wong2020Fast": 1.3,
    "robustbench:cifar10/Linf/Rice2020Overfitting": 1.0,
    "robustbench:cifar10/Linf/NotARealModel2099": 0.5,  # absent from the published source: kept, visible
}


def _kstar(out, model_id, gamma, **kw):
    fields = {"dataset": "cifar10", "split": "test", "layer": "penultimate", "seed": 0, **kw}
    rec = new_record(kind="kstar", model_id=model_id, metric_family="kstar",
                     metrics={"gamma_prime": metric(gamma, higher_is_better=False)}, command=["test"], **fields)
    return write_record(rec, out)


def _spec(tmp_path, **fields):
    path = tmp_path / f"{fields['id']}.toml"
    path.write_text("[leaderboard]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items()))
    return path


@pytest.fixture
def scored(tmp_path):
    out = tmp_path / "records"
    for model_id, gamma in MODELS.items():
        _kstar(out, model_id, gamma)
    bad = _kstar(out, "robustbench:cifar10/Linf/Wong2020Fast", 9.9, seed=1)
    data = json.loads(bad.read_text())
    data["schema_version"] = 42  # a future schema: reported and skipped, not read
    bad.write_text(json.dumps(data))
    return out


def _rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_cross_model_join_correlation_and_plots(shared_data, scored, tmp_path):
    spec = _spec(tmp_path, id="xm", title="k* vs acc", kind="cross_model", published=["robustbench"],
                 accuracies=["clean_acc_pct", "autoattack_acc_pct"])
    problems: list = []
    out = tmp_path / "out"
    build_leaderboards([spec], [scored], out, published_root=shared_data, progress=False, problems_out=problems)
    assert [p.kind for p in problems] == ["schema_version"]
    rows = _rows(out / "xm.csv")
    models = {(r["row"], r["column"]): r for r in rows if r["table"] == "xm__models"}
    ghost = models[("robustbench:cifar10/Linf/NotARealModel2099", "clean acc (%)")]
    assert ghost["value"] == "" and "not_published" in ghost["flags"] and ghost["text"] == "—"
    assert models[("robustbench:cifar10/Linf/Carmon2019Unlabeled", "clean acc (%)")]["value"] == "89.69"
    assert models[("robustbench:cifar10/Linf/Carmon2019Unlabeled", "clean acc (%)")]["source"] == "published-robustbench"
    # independent reference: scipy on the raw published JSON values
    raw = {m: json.loads((shared_data / "robustbench_model_info" / (m.split(":")[1] + ".json")).read_text())
           for m in MODELS if "NotAReal" not in m}
    for field, column in (("clean_acc", "clean acc (%)"), ("autoattack_acc", "AutoAttack acc (%)")):
        xs = [float(raw[m][field]) for m in raw]
        ys = [MODELS[m] for m in raw]
        corr = {r["column"]: r for r in rows if r["table"] == "xm__correlation" and r["row"] == column}
        assert float(corr["Spearman ρ"]["value"]) == pytest.approx(scipy.stats.spearmanr(xs, ys).statistic)
        assert float(corr["Kendall τ"]["value"]) == pytest.approx(scipy.stats.kendalltau(xs, ys).statistic)
        assert float(corr["n models"]["value"]) == 5
    assert sorted(p.name for p in (out / "plots").glob("xm__*.svg")) == ["xm__gamma_vs_1.svg", "xm__gamma_vs_2.svg"]
    assert 'src="plots/xm__gamma_vs_1.svg"' in (out / "index.html").read_text()


def test_fisher_interval_matches_hand_computation():
    # r_s = 0.5 needs data; use the formula's inputs directly through a dataset with known rho
    x = list(range(10))
    y = [0, 2, 1, 4, 3, 6, 5, 9, 8, 7]
    rc = rank_correlation(x, y, "spearman")
    r = scipy.stats.spearmanr(x, y).statistic
    half = 1.959963984540054 * math.sqrt(1.06 / 7)
    assert (rc.ci_low, rc.ci_high) == pytest.approx((math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half)))
    assert rc.ci_low < rc.statistic < rc.ci_high


def test_bootstrap_interval_is_seeded():
    x = [1, 5, 2, 8, 3, 9, 4, 7, 6, 10]
    y = [2, 4, 1, 9, 3, 7, 6, 8, 5, 10]
    a = rank_correlation(x, y, "kendall", ci="bootstrap", seed=3, n_resamples=300)
    b = rank_correlation(x, y, "kendall", ci="bootstrap", seed=3, n_resamples=300)
    assert a == b and a.ci_low <= a.statistic <= a.ci_high
    assert math.isnan(rank_correlation([1, 2], [2, 1]).statistic)  # too few pairs: undefined, not a crash


def test_kstar_columns_of_selected_checkpoints(shared_data, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(shared_data / "domainbed" / "test_sweep_data", sweep)
    records = tmp_path / "records"
    for run in sorted(p for p in sweep.iterdir() if p.is_dir()):
        first = json.loads((run / "results.jsonl").read_text().splitlines()[0])
        for env in first["args"]["test_envs"]:
            # final-model records, one convention each: (VLCS, env<t>_in) and (run:<t>, in)
            dataset, split = ("VLCS", f"env{env}_in") if env % 2 else (f"run:{env}", "in")
            rec = new_record(kind="kstar", model_id=f"domainbed:{run}", dataset=dataset, split=split,
                             layer="featurizer", metric_family="kstar", seed=0, command=["test"],
                             metrics={"gamma_prime": metric(0.1 * env, higher_is_better=False)})
            write_record(rec, records)
    spec = _spec(tmp_path, id="dg", title="dg", kind="domainbed", selection=["iid", "oracle"],
                 extra_metrics=["gamma_prime", "uniformity"])
    build_leaderboards([spec], [sweep, records], tmp_path / "out", progress=False)
    rows = _rows(tmp_path / "out" / "dg.csv")
    gamma = {r["table"]: r for r in rows if r["column"] == "Γ′ (selected)"}
    # every selected checkpoint of env t has Γ′ = 0.1 t whichever run was selected: mean over 4 envs = 0.15;
    # the sweep has 2 trials x 4 test envs = 8 selected checkpoints per row
    assert float(gamma["VLCS__oracle"]["value"]) == pytest.approx(0.15)
    assert gamma["VLCS__oracle"]["n"] == "8" and gamma["VLCS__oracle"]["flags"] == ""  # oracle = final step
    assert "final_checkpoint" in gamma["VLCS__iid"]["flags"]  # earlier checkpoints stood in for by the final one
    unif = next(r for r in rows if r["column"] == "uniformity (selected)" and r["table"] == "VLCS__iid")
    assert unif["text"] == "—" and "not_scored" in unif["flags"]

    # score the earlier checkpoints training-domain validation selected (Γ′ = 1 + 0.1 t): the iid column
    # then uses them, not the final-model stand-ins, and loses its flag
    earlier = selected_checkpoints(SweepSelection.build(read_sweep(str(sweep), progress=False), ("iid",)))
    assert earlier == _iid_earlier_reference(sweep)
    for run, step, env in earlier:
        rec = new_record(kind="kstar", model_id=f"domainbed:{run}/model_step{step}.pkl", dataset=f"run:env{env}",
                         split="in", layer="featurizer", metric_family="kstar", seed=0, command=["test"],
                         metrics={"gamma_prime": metric(1 + 0.1 * env, higher_is_better=False)})
        write_record(rec, records)
    build_leaderboards([spec], [sweep, records], tmp_path / "out2", progress=False)
    iid = next(r for r in _rows(tmp_path / "out2" / "dg.csv") if r["column"] == "Γ′ (selected)" and r["table"] == "VLCS__iid")
    assert iid["flags"] == "" and iid["n"] == "8"
    assert float(iid["value"]) == pytest.approx(0.15 + len(earlier) / 8)

    # a run without `done`: its row's Γ′ is flagged incomplete, as the accuracy cells beside it are
    run = min(p for p in sweep.iterdir() if (p / "done").is_file())
    algorithm = json.loads((run / "results.jsonl").read_text().splitlines()[0])["args"]["algorithm"]
    (run / "done").unlink()
    build_leaderboards([spec], [sweep, records], tmp_path / "out3", progress=False)
    rows = _rows(tmp_path / "out3" / "dg.csv")
    flagged = {r["row"]: "incomplete" in r["flags"].split(";") for r in rows
               if r["column"] == "Γ′ (selected)" and r["table"] == "VLCS__oracle"}
    assert flagged == {algorithm: True}  # (the sweep has one algorithm; out2 above has no flag)
    assert "unfinished or crashed" in (tmp_path / "out3" / "dg.md").read_text()


def test_selected_checkpoint_scored_on_two_data_sets_is_an_error_not_a_pick(shared_data, tmp_path):
    from ldr_plugin.errors import LdrError
    from ldr_plugin.results.record import identity_digest

    sweep = tmp_path / "sweep"
    shutil.copytree(shared_data / "domainbed" / "test_sweep_data", sweep)
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    spec = _spec(tmp_path, id="dg", title="dg", kind="domainbed", selection=["oracle"], extra_metrics=["gamma_prime"])

    def score(records, root, seed, gamma):
        for run in runs:
            env = json.loads((run / "results.jsonl").read_text().splitlines()[0])["args"]["test_envs"][0]
            identity = _identity(root, seed)
            rec = new_record(kind="kstar", model_id=f"domainbed:{run}", dataset="VLCS", split=f"env{env}_in",
                             layer="featurizer", metric_family="kstar", seed=seed, command=["test"],
                             metrics={"gamma_prime": metric(gamma, higher_is_better=False)},
                             identity=identity, identity_digest=identity_digest(identity))
            write_record(rec, records)

    # two seeds of one data set: one computation, fine (the first seed is used)
    score(tmp_path / "same", "/data/a", 0, 0.2)
    score(tmp_path / "same", "/data/a", 1, 0.4)
    build_leaderboards([spec], [sweep, tmp_path / "same"], tmp_path / "out", progress=False)
    cells = [r for r in _rows(tmp_path / "out" / "dg.csv") if r["column"] == "Γ′ (selected)"]
    assert cells and all(float(r["value"]) == pytest.approx(0.2) for r in cells)
    # the same checkpoints, split and seed over another folder: a column would take the smaller Γ′
    score(tmp_path / "mixed", "/data/a", 0, 0.7)
    score(tmp_path / "mixed", "/data/b", 0, 0.1)
    with pytest.raises(LdrError, match=r"^run .*test env \d, step \d+\): the gamma_prime records .* computed on 2 different data sets"):
        build_leaderboards([spec], [sweep, tmp_path / "mixed"], tmp_path / "out2", progress=False)


def test_cli_lists_saved_selected_checkpoints(shared_data, tmp_path, capsys):
    from ldr_plugin.cli import main

    sweep = tmp_path / "sweep"
    shutil.copytree(shared_data / "domainbed" / "test_sweep_data", sweep)
    earlier = sorted(_iid_earlier_reference(sweep))
    saved = earlier[:3]
    for run, step, _ in saved:
        (Path(run) / f"model_step{step}.pkl").write_bytes(b"")
    assert main(["leaderboard", "selected-checkpoints", "--input_dir", str(sweep)]) == 0
    out, err = capsys.readouterr()
    listed = set(out.split())
    assert {f"domainbed:{Path(run).resolve()}/model_step{step}.pkl" for run, step, _ in saved} <= listed
    assert all(Path(line.split(":", 1)[1]).is_file() for line in listed)  # only checkpoints that exist
    assert "selected checkpoints were not saved" in err


def _iid_earlier_reference(sweep):
    """Brute force over results.jsonl: per (trial, algorithm, test env) the single-test-env record of highest
    mean training-domain out-split accuracy (first in file order on ties), kept when it is not its run's last."""
    best = {}
    for run in sorted(p for p in sweep.iterdir() if p.is_dir()):
        recs = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
        if len(recs[0]["args"]["test_envs"]) != 1:
            continue
        t = recs[0]["args"]["test_envs"][0]
        last = max(r["step"] for r in recs)
        for r in recs:
            val = np.mean([r[f"env{i}_out_acc"] for i in range(4) if i != t])
            key = (r["args"]["trial_seed"], r["args"]["algorithm"], t)
            if key not in best or val > best[key][0]:
                best[key] = (val, str(run), r["step"], last, t)
    return {(run, step, t) for _, run, step, last, t in best.values() if step != last}


def _within_reference(x, y, strata, method):
    """Brute force: scipy per stratum (>= 3 points, not constant), weighted by stratum size."""
    stat = {"spearman": scipy.stats.spearmanr, "kendall": scipy.stats.kendalltau}[method]
    total = weight = 0.0
    for s in dict.fromkeys(strata):
        xs = [a for a, t in zip(x, strata) if t == s]
        ys = [b for b, t in zip(y, strata) if t == s]
        if len(xs) >= 3 and len(set(xs)) > 1 and len(set(ys)) > 1:
            total += len(xs) * stat(xs, ys).statistic
            weight += len(xs)
    return total / weight, int(weight)


def test_stratified_correlation_is_the_size_weighted_per_stratum_statistic():
    rng = np.random.default_rng(1)
    strata = ["a"] * 5 + ["b"] * 8 + ["c"] * 12 + ["d"] * 2 + ["e"] * 4  # d: too small, e: constant x
    x = list(rng.integers(0, 4, 29).astype(float))  # ties on purpose
    x[27:31] = [7.0] * 4
    y = list(rng.normal(size=29))
    for method in ("spearman", "kendall"):
        rc = stratified_rank_correlation(x, y, strata, method, seed=5, n_resamples=400)
        expected, n = _within_reference(x, y, strata, method)
        assert rc.statistic == pytest.approx(expected) and rc.n == n == 25
        assert rc.ci_low <= rc.statistic <= rc.ci_high and 0 < rc.pvalue <= 1
        assert rc == stratified_rank_correlation(x, y, strata, method, seed=5, n_resamples=400)  # seeded
    empty = stratified_rank_correlation([1, 2], [2, 1], ["a", "a"])
    assert math.isnan(empty.statistic) and empty.n == 0


def test_stratified_correlation_separates_within_from_between_strata():
    rng = np.random.default_rng(0)
    strata = np.repeat(np.arange(6), 30)
    x = rng.normal(size=strata.size) + 3 * strata  # strata differ in level: pooled rho is large ...
    y = rng.normal(size=strata.size) + 3 * strata  # ... but x and y are independent inside each stratum
    assert scipy.stats.spearmanr(x, y).statistic > 0.8
    null = stratified_rank_correlation(x, y, strata, "spearman", n_resamples=500)
    assert null.ci_low < 0 < null.ci_high and null.pvalue > 0.05
    y_dep = y - 0.8 * (x - 3 * strata)  # now related inside every stratum (negatively)
    dep = stratified_rank_correlation(x, y_dep, strata, "kendall", n_resamples=500)
    assert dep.ci_high < 0 and dep.pvalue == pytest.approx(1 / 501)


def test_heldout_correlation_within_domains_from_runs(tmp_path):
    rng = np.random.default_rng(2)
    records, points, labels = tmp_path / "records", [], set()
    for dataset, envs in (("RotatedDigitsFlat", (0, 3)), ("CorruptedDigitsFlat", (1,))):
        for env in envs:
            for i in range(5):
                run = tmp_path / "sweep" / f"{dataset}_{env}_{i}"
                run.mkdir(parents=True)
                acc = float(rng.uniform(0.3, 0.95))
                args = {"dataset": dataset, "test_envs": [env], "algorithm": "ERM" if i % 2 else "LatentDR",
                        "trial_seed": i, "hparams_seed": 0}
                first = {"args": args, "step": 0, f"env{env}_in_acc": 0.1, f"env{env}_out_acc": 0.1}
                last = {**first, "step": 100, f"env{env}_in_acc": acc}  # the final model's accuracy counts
                (run / "results.jsonl").write_text(json.dumps(first) + "\n" + json.dumps(last) + "\n")
                gamma = float(rng.normal())
                _kstar(records, f"domainbed:{run}", gamma, dataset=f"run:env{env}", split="in", layer="featurizer")
                points.append((100 * acc, gamma, f"{dataset} env{env}"))
                labels.add(f"{args['algorithm']} · {dataset} env{env} · trial {i} · {run.name[:8]}")
    spec = _spec(tmp_path, id="kh", title="k* vs held-out", kind="cross_model", accuracies=["heldout_acc_pct"],
                 layer="featurizer", stratify="heldout_domain", ci="bootstrap", n_resamples=300)
    build_leaderboards([spec], [records], tmp_path / "out", progress=False)
    rows = [r for r in _rows(tmp_path / "out" / "kh.csv") if r["table"] == "kh__correlation"]
    within = {r["column"]: r for r in rows if r["row"] == "held-out domain acc (%), within held-out domain"}
    pooled = {r["column"]: r for r in rows if r["row"] == "held-out domain acc (%)"}
    acc, gamma, strata = (list(t) for t in zip(*points))
    for method, column in (("spearman", "Spearman ρ"), ("kendall", "Kendall τ")):
        expected, n = _within_reference(acc, gamma, strata, method)
        assert float(within[column]["value"]) == pytest.approx(expected)
        assert int(float(within["n models"]["value"])) == n == 15
    assert float(pooled["Spearman ρ"]["value"]) == pytest.approx(scipy.stats.spearmanr(acc, gamma).statistic)
    # rows are named by algorithm, held-out domain, trial and run folder; the plot colours by algorithm
    assert {r["row"] for r in _rows(tmp_path / "out" / "kh.csv") if r["table"] == "kh__models"} == labels
    svg = (tmp_path / "out" / "plots" / "kh__gamma_vs_1.svg").read_text()
    assert ">ERM<" in svg and ">LatentDR<" in svg


def test_unknown_stratify_value_is_an_error_naming_the_spec(tmp_path):
    from ldr_plugin.errors import LdrError

    spec = _spec(tmp_path, id="bad", title="t", kind="cross_model", stratify="dataset")
    with pytest.raises(LdrError, match=r"bad\.toml: 'leaderboard.stratify' must be one of \['', 'heldout_domain'\], got 'dataset'"):
        build_leaderboards([spec], [tmp_path], tmp_path / "out", progress=False)


@pytest.mark.robustbench
def test_random_weights_show_the_accuracy_mismatch_flag(shared_data, tmp_path):
    """A random-initialised Ding2020MMA scored by ldr score: its measured top-1 sits beside the published
    clean accuracy (84.36%) and is flagged; a record whose measurement agrees is not."""
    import importlib.util

    if importlib.util.find_spec("robustbench") is None:
        pytest.skip("needs robustbench")
    import torch

    from ldr_plugin.scoring.cells import ScoreCell, registered_metrics, score_cell
    from ldr_plugin.scoring.cifar import write_cifar_folder
    from ldr_plugin.sources._compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    model = model_dicts[BenchmarkDataset("cifar10")][ThreatModel("Linf")]["Ding2020MMA"]["model"]()
    (tmp_path / "w" / "cifar10" / "Linf").mkdir(parents=True)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "w" / "cifar10" / "Linf" / "Ding2020MMA.pt")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 8)
    write_cifar_folder(tmp_path / "data", "cifar10", {"test": (rng.integers(0, 256, (80, 32, 32, 3), dtype=np.uint8),
                                                              labels)}, [f"c{i}" for i in range(10)])
    records = tmp_path / "records"
    score_cell(ScoreCell("robustbench:cifar10/Linf/Ding2020MMA", f"cifar10:{tmp_path / 'data'}"), records,
               weights_dir=tmp_path / "w", device="cpu", progress=False, metrics={"kstar": registered_metrics()["kstar"]})
    published = json.loads((shared_data / "robustbench_model_info" / "cifar10" / "Linf" / "Wong2020Fast.json").read_text())
    agree = round(float(published["clean_acc"]) / 100 * 80)  # a measurement consistent with the published number
    rec = new_record(kind="kstar", model_id="robustbench:cifar10/Linf/Wong2020Fast", metric_family="kstar",
                     dataset="cifar10", split="test", layer="penultimate", seed=0, command=["test"],
                     metrics={"gamma_prime": metric(1.0, higher_is_better=False)},
                     accuracy={"top1_pct": 100 * agree / 80, "correct": agree, "n": 80, "kind": "clean top-1",
                               "compares_to": "clean_acc_pct", "ci99_pct": [0.0, 100.0]})
    write_record(rec, records)
    spec = _spec(tmp_path, id="rand", title="random weights", kind="cross_model", published=["robustbench"],
                 accuracies=["clean_acc_pct"])
    build_leaderboards([spec], [records], tmp_path / "out", published_root=shared_data, progress=False)
    rows = {(r["row"], r["column"]): r for r in _rows(tmp_path / "out" / "rand.csv") if r["table"] == "rand__models"}
    ding = rows[("robustbench:cifar10/Linf/Ding2020MMA", "measured top-1 (%)")]
    assert float(ding["value"]) < 40 and "accuracy_mismatch" in ding["flags"]
    assert float(rows[("robustbench:cifar10/Linf/Ding2020MMA", "clean acc (%)")]["value"]) > 80
    wong = rows[("robustbench:cifar10/Linf/Wong2020Fast", "measured top-1 (%)")]
    assert float(wong["value"]) == pytest.approx(100 * agree / 80, abs=0.01) and "accuracy_mismatch" not in wong["flags"]
    assert "are these the published weights?" in (tmp_path / "out" / "rand.md").read_text()


def _kstar_with_classes(out, model_id, gamma_prime, gammas, distance="euclidean"):
    family = "kstar" if distance == "euclidean" else f"kstar-{distance}"
    per_class = [{"name": f"c{i}", "n": 10, "gamma": g, "gamma_state": "finite"} for i, g in enumerate(gammas)]
    rec = new_record(kind="kstar", model_id=model_id, metric_family=family, dataset="cifar10", split="test",
                     layer="penultimate", seed=0, metrics={"gamma_prime": metric(gamma_prime, higher_is_better=False)},
                     preprocessing={"distance": distance}, detail={"per_class": per_class, "distance": distance},
                     command=["test"])
    return write_record(rec, out)


def test_mixed_distances_are_shown_and_never_pooled(shared_data, tmp_path):
    out_records = tmp_path / "records"
    rng = np.random.default_rng(0)
    gammas = {}
    for i, model_id in enumerate(m for m in MODELS if "NotAReal" not in m):
        for distance, shift in (("euclidean", 0.0), ("cosine", 5.0)):  # cosine Γ′ on another scale
            g = rng.normal(size=6) + np.linspace(-1, 1, 6)
            gammas[(model_id, distance)] = g
            _kstar_with_classes(out_records, model_id, float(MODELS[model_id] + shift), list(g), distance)
    spec = _spec(tmp_path, id="mix", title="mixed", kind="cross_model", published=["robustbench"],
                 accuracies=["clean_acc_pct"], metric_family="kstar*")
    out = tmp_path / "out"
    build_leaderboards([spec], [out_records], out, published_root=shared_data, progress=False, problems_out=[])
    rows = _rows(out / "mix.csv")
    labels = {r["row"] for r in rows if r["table"] == "mix__models"}
    assert len(labels) == 10 and all(lbl.endswith(("[euclidean]", "[cosine]")) for lbl in labels)
    corr = {r["row"]: r for r in rows if r["table"] == "mix__correlation" and r["column"] == "Spearman ρ"}
    assert set(corr) == {"clean acc (%) [cosine]", "clean acc (%) [euclidean]"}  # per distance, no pooled row
    raw = {m: float(json.loads((shared_data / "robustbench_model_info" / (m.split(":")[1] + ".json")).read_text())
                    ["clean_acc"]) for m in MODELS if "NotAReal" not in m}
    expected = scipy.stats.spearmanr([raw[m] for m in raw], [MODELS[m] for m in raw]).statistic
    assert float(corr["clean acc (%) [euclidean]"]["value"]) == pytest.approx(expected)
    assert float(corr["clean acc (%) [cosine]"]["value"]) == pytest.approx(expected)
    assert sorted(p.name for p in (out / "plots").glob("mix__*.svg")) == [
        "mix__gamma_vs_1__cosine.svg", "mix__gamma_vs_1__euclidean.svg"]
    # class-skew diagnostics: spread of per-class γ and mean ρ with the other models of the same distance
    skew = {(r["row"], r["column"]): r for r in rows if r["table"] == "mix__class_skew"}
    first = "robustbench:cifar10/Linf/Carmon2019Unlabeled"
    g = gammas[(first, "cosine")]
    row = f"{first} [cifar10, penultimate, cosine]"
    assert float(skew[(row, "per-class γ std")]["value"]) == pytest.approx(np.std(g), abs=5e-4)
    others = [gammas[(m, "cosine")] for m in raw if m != first]
    mean_rho = np.mean([scipy.stats.spearmanr(g, o).statistic for o in others])
    assert float(skew[(row, "mean ρ of per-class γ with other models")]["value"]) == pytest.approx(mean_rho, abs=5e-4)
    # a spec for one family sees one distance, and says which
    only = _spec(tmp_path, id="eu", title="eu", kind="cross_model", published=["robustbench"],
                 accuracies=["clean_acc_pct"])
    build_leaderboards([only], [out_records], tmp_path / "out2", published_root=shared_data, progress=False,
                       problems_out=[])
    eu_rows = _rows(tmp_path / "out2" / "eu.csv")
    assert {r["row"] for r in eu_rows if r["table"] == "eu__models"} == set(raw)
    assert "distance euclidean" in (tmp_path / "out2" / "eu.md").read_text()


def _identity(root, seed):
    data = {"kind": "imagefolder", "root": root, "fingerprint": f"files-of-{root}", "classes": "c3", "n_classes": 3,
            "split": "val", "n_per_class_requested": 5, "subsample_seed": seed, "indices": f"i{seed}",
            "labels": f"l{seed}"}
    return {"model_id": "m", "data": data, "layer": "penultimate", "metric_options": {},
            "preprocessing": "source default for model_id"}


def test_same_dataset_name_over_different_data_is_never_averaged_as_seeds(tmp_path):
    from ldr_plugin.results.record import identity_digest

    out, model = tmp_path / "records", "robustbench:cifar10/Linf/Standard"
    # two seeds of one data set (one row, n = 2), and one seed of another folder with the same name
    for root, seed, gamma in (("/data/a/val", 0, 0.2), ("/data/a/val", 1, 0.4), ("/data/b/val", 0, 0.9)):
        identity = _identity(root, seed)
        _kstar(out, model, gamma, dataset="imagefolder:val", seed=seed, identity=identity,
               identity_digest=identity_digest(identity))
    spec = _spec(tmp_path, id="v", title="versions", kind="cross_model", published=[])
    build_leaderboards([spec], [out], tmp_path / "board")
    rows = [r for r in _rows(tmp_path / "board" / "v.csv") if r["table"] == "v__models" and r["column"] == "Γ′"]
    assert len(rows) == 2, rows
    assert sorted((float(r["value"]), r["n"]) for r in rows) == [(pytest.approx(0.3), "2"), (pytest.approx(0.9), "1")]
    assert all("imagefolder:val@" in r["row"] for r in rows)  # the two seeds of /data/a averaged; /data/b apart
