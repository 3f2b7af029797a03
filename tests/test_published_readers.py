"""Readers of published numbers, checked against the raw files parsed independently (json, csv, regex)."""

from __future__ import annotations

import csv
import json
import re

import pytest

from ldr_plugin.domainbed.published import SOURCE_TEXT, read_domainbed_tex
from ldr_plugin.errors import LdrError
from ldr_plugin.published.openclip import openclip_table, read_openclip
from ldr_plugin.published.robustbench import read_robustbench, robustbench_tables


def test_robustbench_percent_strings_become_numbers(shared_data):
    root = shared_data / "robustbench_model_info"
    entries = read_robustbench(root)
    files = sorted(root.glob("*/*/*.json"))
    assert len(entries) == len(files) == 236
    for path in files:
        raw = json.loads(path.read_text())
        entry = entries[f"robustbench:{path.parent.parent.name}/{path.parent.name}/{path.stem}"]
        assert entry.clean_acc_pct == float(raw["clean_acc"])
        assert entry.autoattack_acc_pct == (float(raw["autoattack_acc"]) if raw.get("autoattack_acc") else None)
    carmon = entries["robustbench:cifar10/Linf/Carmon2019Unlabeled"]
    assert (carmon.clean_acc_pct, carmon.autoattack_acc_pct) == (89.69, 59.53)
    # RobustBench's HTML line breaks become spaces, so no page shows a literal '<br>'
    engstrom = json.loads((root / "cifar10" / "L2" / "Engstrom2019Robustness.json").read_text())
    assert "<br>" in engstrom["venue"]
    assert entries["robustbench:cifar10/L2/Engstrom2019Robustness"].venue == engstrom["venue"].replace("<br>", " ")
    assert not any("<br" in e.venue + e.paper + e.architecture for e in entries.values())


def test_robustbench_bad_value_names_file_and_field(tmp_path):
    bad = tmp_path / "cifar10" / "Linf" / "Broken.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps({"clean_acc": "89,69", "autoattack_acc": "50"}))
    with pytest.raises(LdrError, match=r"Broken\.json: field 'clean_acc'"):
        read_robustbench(tmp_path)


def test_robustbench_tables_sorted_by_robust_accuracy(shared_data):
    tables = robustbench_tables(read_robustbench(shared_data / "robustbench_model_info"), ["cifar10"], ["Linf"])
    (table,) = tables
    robust = [r.cells[1].value for r in table.rows]
    assert robust == sorted(robust, reverse=True) and all(r.published for r in table.rows)


def test_openclip_fractions_to_percent(shared_data):
    path = shared_data / "openclip" / "openclip_results.csv"
    entries = read_openclip(path)
    rows = list(csv.DictReader(path.open()))
    assert len(entries) == len(rows) == 121
    for row in rows:
        entry = entries[f"openclip:{row['name']}/{row['pretrained']}"]
        assert entry.zeroshot_avg_pct == pytest.approx(100 * float(row["Average perf. on 38 datasets"]), abs=1e-9)
        assert entry.zeroshot_imagenet_pct == pytest.approx(100 * float(row["ImageNet 1k"]), abs=1e-9)
    table = openclip_table(entries)
    assert table.rows[0].label == "ViT-H-14-378-quickgelu/dfn5b" and table.rows[0].cells[0].value == 70.79


def test_openclip_bad_fraction_names_line(tmp_path, shared_data):
    lines = (shared_data / "openclip" / "openclip_results.csv").read_text().splitlines()
    parts = lines[3].split(",")
    parts[4] = "70.8"  # a percent where a fraction belongs
    lines[3] = ",".join(parts)
    bad = tmp_path / "r.csv"
    bad.write_text("\n".join(lines))
    with pytest.raises(LdrError, match=r"r\.csv:4: column 'Average perf\. on 38 datasets'"):
        read_openclip(bad)


def test_domainbed_tex_every_number_read_and_marked(shared_data):
    path = shared_data / "domainbed" / "results_2020_10_06.tex"
    tables = read_domainbed_tex(path)
    assert len(tables) == 3 * 8  # 3 selection methods x (7 datasets + Averages)
    raw_rows = [line for line in path.read_text().splitlines() if " & " in line and not line.startswith("\\textbf")]
    raw_numbers = [float(x) for line in raw_rows for x in re.findall(r"-?\d+\.\d+", line.split(" & ", 1)[1])]
    ours = []
    for table in tables:
        for row in table.rows:
            assert row.published and row.source in table.sources and table.sources[row.source] == SOURCE_TEXT
            for cell in row.cells:
                ours += [cell.value] + ([cell.err] if cell.err is not None else [])
    assert ours == raw_numbers
    vlcs = next(t for t in tables if t.table_id == "VLCS__iid")
    assert [c.name for c in vlcs.columns] == ["C", "L", "S", "V", "Avg"]
    erm = vlcs.rows[0]
    assert (erm.label, erm.cells[0].value, erm.cells[0].err, erm.cells[4].value) == ("ERM", 97.7, 0.4, 77.5)
    assert [c.name for c in tables[0].columns][:3] == ["+90%", "+80%", "-90%"]  # \% unescaped
