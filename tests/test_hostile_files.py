"""Issue 20, item 3: every reader names the file and the problem, and goes on.

Hostile files (a FIFO, a symlink loop, bytes that are not UTF-8 in a file's content or name, JSON
nested 100,000 deep, a header claiming 1 TB, an empty .npz, a .npy) give a named problem or an
:class:`LdrError`; a property test feeds arbitrary and mutated bytes to every reader and only the
project's own error type may escape.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldr_plugin.cli import main
from ldr_plugin.domainbed.published import read_domainbed_tex
from ldr_plugin.domainbed.runs import check_run_folders, read_sweep
from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep
from ldr_plugin.errors import LdrError
from ldr_plugin.files import UnreadableFile, read_bytes
from ldr_plugin.kstar.job import load_features_file
from ldr_plugin.leaderboard.spec import load_spec
from ldr_plugin.published.openclip import read_openclip
from ldr_plugin.published.robustbench import read_entry
from ldr_plugin.results import metric, new_record, write_record
from ldr_plugin.results.check import check_records, load_cells
from ldr_plugin.results.io import read_record
from ldr_plugin.scoring.features import _read_cache

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _record_bytes(tmp_path) -> bytes:
    record = new_record(kind="kstar", model_id="x:y", dataset="d", split="all", layer="l", metric_family="kstar",
                        seed=0, metrics={"gamma_prime": metric(0.5, higher_is_better=False)})
    return write_record(record, tmp_path / "valid").read_bytes()


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_a_fifo_is_reported_by_type_and_never_opened_for_reading(tmp_path):
    fifo = tmp_path / "x.result.json"
    os.mkfifo(fifo)  # reading it would block forever: no writer
    with pytest.raises(UnreadableFile, match="not a regular file \\(a FIFO\\)"):
        read_bytes(fifo)
    report = check_records(tmp_path)
    assert [p.kind for p in report.problems] == ["unreadable"]
    run = tmp_path / "sweep" / "run1"
    run.mkdir(parents=True)
    os.mkfifo(run / "results.jsonl")
    sweep = read_sweep(tmp_path / "sweep", progress=False)
    assert [(p.kind, Path(p.path).name) for p in sweep.problems] == [("unreadable", "results.jsonl")]
    assert check_run_folders(tmp_path / "sweep")[1][0].kind == "unreadable"


def test_symlink_loops_and_non_utf8_names_are_named(tmp_path, capsys):
    os.symlink("b.result.json", tmp_path / "a.result.json")
    os.symlink("a.result.json", tmp_path / "b.result.json")
    name = os.fsdecode(b"\xff\xfe.result.json")
    (tmp_path / name).write_bytes(b"{}")
    assert main(["results", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("symlink loop") == 2 and "\\xff\\xfe.result.json: missing field 'schema_version'" in out


@pytest.mark.parametrize("content, expected", [
    (b"", "No data left in file"),
    (b"\x93NUMPY" + b"\x00" * 20, "not a readable .npz"),
    (_npz_bytes(features=np.zeros((2, 2))).replace(b"(2, 2)", b"(9999999, 99999)"[:6]), "not a readable"),
])
def test_broken_npz_inputs_are_bad_input(tmp_path, content, expected):
    path = tmp_path / "f.npz"
    path.write_bytes(content)
    with pytest.raises(LdrError, match=expected):
        load_features_file(path)


def test_an_npz_header_claiming_a_terabyte_is_refused_before_allocation(tmp_path, capsys):
    header = np.lib.format.header_data_from_array_1_0(np.zeros((2, 2)))
    header["shape"] = (500_000, 250_000)  # 1e12 bytes of float64
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    member.write(np.zeros(4).tobytes())
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("features.npy", member.getvalue())
        archive.writestr("labels.npy", member.getvalue())
    assert main(["kstar", str(tmp_path / "huge.npz"), "--out", str(tmp_path / "out")]) == 2
    assert "claims shape (500000, 250000) (1000000000000 bytes)" in capsys.readouterr().err


def test_an_empty_npz_and_a_npy_are_named_not_aborted(tmp_path, capsys):
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "one.npy", np.zeros((4, 2)))
    assert main(["kstar", str(tmp_path / "empty.npz"), "--out", str(tmp_path / "out")]) == 2
    assert main(["kstar", str(tmp_path / "one.npy"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "aborted" not in err and "empty.npz: not a readable .npz" in err and "one.npy: a single .npy array" in err


def test_matplotlib_hostile_class_names_are_drawn_literally(tmp_path, clustered_features, capsys):
    feats, labels = clustered_features(n_per_class=10, n_classes=2, dim=3, spread=0.5)
    np.savez(tmp_path / "f.npz", features=feats, labels=labels, class_names=np.array(["$\\frac{$", "a$b$c"]))
    assert main(["kstar", str(tmp_path / "f.npz"), "--out", str(tmp_path / "out"), "--plot-format", "svg"]) == 0
    [svg] = (tmp_path / "out").glob("*.svg")
    text = svg.read_text()
    assert "$\\frac{$" in text and "a$b$c" in text


def test_a_damaged_feature_cache_is_recomputed_not_fatal(tmp_path):
    good = _npz_bytes(features=np.zeros((2, 2)), labels=np.zeros(2), meta=np.array("{}"))
    for content in (b"", good[:40], good.replace(b"NUMPY", b"NUMPZ"), b"PK\x03\x04" + b"\x00" * 60):
        (tmp_path / "c.npz").write_bytes(content)
        assert _read_cache(tmp_path / "c.npz") is None


# --- the property test: arbitrary and mutated bytes into every reader -----------------------------

def _readers(tmp_path: Path) -> dict[str, tuple[str, bytes, callable]]:
    """name -> (file name, a valid example, the reader): each reader must return or raise LdrError."""
    spec = b'[leaderboard]\nid = "t"\ntitle = "T"\nkind = "cross_model"\nconfidence = 0.9\n'
    sweep = tmp_path / "example_sweep"
    write_synthetic_sweep(sweep, n_records=8, seed=2)
    jsonl = next(sweep.glob("*/results.jsonl")).read_bytes()
    tex = (SHARED / "domainbed" / "results_2020_10_06.tex").read_bytes()[:3000] if SHARED.is_dir() else b"\\subsection{x}"
    csv = (SHARED / "openclip" / "openclip_results.csv").read_bytes()[:2000] if SHARED.is_dir() else b"name,pretrained\n"

    def sweep_reader(path):
        run = path.parent / "sweep" / "run"
        run.mkdir(parents=True, exist_ok=True)
        (run / "results.jsonl").write_bytes(path.read_bytes())
        read_sweep(path.parent / "sweep", progress=False)
        check_run_folders(path.parent / "sweep")

    def cache_reader(path):
        assert _read_cache(path) is None or isinstance(_read_cache(path), dict)

    return {
        "record": ("r.result.json", _record_bytes(tmp_path), read_record),
        "records_check": ("c.result.json", _record_bytes(tmp_path), lambda p: check_records(p.parent)),
        "sweep": ("results.jsonl", jsonl, sweep_reader),
        "spec": ("s.toml", spec, load_spec),
        "features": ("f.npz", _npz_bytes(features=np.eye(4), labels=np.arange(4) % 2), load_features_file),
        "feature_cache": ("k.npz", _npz_bytes(features=np.eye(2), labels=np.arange(2), meta=np.array("{}")),
                          cache_reader),
        "expected_cells": ("cells.json", json.dumps([{"model_id": "x:y"}]).encode(), load_cells),
        "openclip": ("o.csv", csv, read_openclip),
        "robustbench": ("m.json", b'{"clean_acc": "90.1", "autoattack_acc": "50.2"}',
                        lambda p: read_entry(p, "cifar10", "Linf")),
        "domainbed_tex": ("results.tex", tex, read_domainbed_tex),
    }


def _mutated(example: bytes):
    """Bytes near a valid file: truncated, with bytes replaced or inserted (deeper into the parsers)."""
    edits = st.lists(st.tuples(st.integers(0, max(len(example) - 1, 0)), st.binary(min_size=0, max_size=8)),
                     max_size=4)

    def apply(cut_and_edits):
        cut, changes = cut_and_edits
        data = bytearray(example[: max(cut, 1)] if cut else example)
        for at, chunk in changes:
            at = min(at, len(data))
            data[at : at + len(chunk) // 2] = chunk
        return bytes(data)

    return st.tuples(st.integers(0, len(example)), edits).map(apply)


HOSTILE = [b"", b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000, b'{"a": ' + b"9" * 5000 + b"}",
           b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f8', 'fortran_order': False, 'shape': (10**12,), }"]


@pytest.mark.parametrize("reader", ["record", "records_check", "sweep", "spec", "features", "feature_cache",
                                    "expected_cells", "openclip", "robustbench", "domainbed_tex"])
def test_only_ldr_errors_escape_any_reader(tmp_path_factory, reader):
    base = tmp_path_factory.mktemp(reader)
    name, example, read = _readers(base)[reader]

    def attempt(data: bytes) -> None:
        folder = Path(base) / f"case{attempt.n}"
        attempt.n += 1
        folder.mkdir()
        path = folder / name
        path.write_bytes(data)
        try:
            read(path)
        except LdrError:
            pass

    attempt.n = 0
    attempt(example)  # the valid example reads
    for data in HOSTILE:
        attempt(data)

    @settings(max_examples=int(os.environ.get("LDR_FUZZ_EXAMPLES", "100")), deadline=None, database=None,
              derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.one_of(st.binary(max_size=300), _mutated(example)))
    def property(data: bytes) -> None:
        attempt(data)

    property()


def test_matplotlib_hostile_algorithm_names_in_leaderboard_plots_are_drawn_literally(tmp_path):
    from ldr_plugin.leaderboard.plots import plot_average_bars
    from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table

    rows = [Row(label=name, cells=[Cell(value=v, err=1.0)], source="ours")
            for name, v in (("$\\frac{$", 50.0), ("a$b$c", 60.0), ("$x^{", None))]
    table = Table(table_id="t", title="T $", columns=[Column("Avg")], rows=rows)
    path = plot_average_bars(table, "Avg", tmp_path / "bars.svg")
    text = path.read_text()
    assert "$\\frac{$" in text and "a$b$c" in text and "$x^{" in text
