"""Coverage of the model sources: build EVERY registry entry offline with random weights and check
that the adapter yields penultimate features.

RobustBench: every zoo entry is built as ``load_model`` builds it (``RobustBenchSource.build_random``,
no checkpoint), the head is found by inspection, one forward of a 2-image batch (input size from
RobustBench's own preprocessing) must give penultimate features; for single-head entries the
features are compared with an independent computation (the head replaced by ``nn.Identity``), and
the width with the measured ``robustbench_zoo_heads.csv``. OpenCLIP: every pretrained (architecture,
tag) pair is resolved through the adapter (tag config, QuickGELU, preprocessing); each architecture is
built once (random init) and ``encode_image`` run on one image.

Run (bounded; other processes may share the machine):
    python benchmarks/sources_coverage.py --source robustbench --timeout 300
    python benchmarks/sources_coverage.py --source openclip --timeout 600 --max-params-m 1000
Writes benchmarks/results/sources_coverage_<source>.csv and prints the summary.
"""

from __future__ import annotations

import argparse
import copy
import csv
import gc
import signal
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

RESULTS = Path(__file__).resolve().parent / "results"
HEADS_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "robustbench_zoo_heads.csv"
PROFILE_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "openclip" / "model_profile.csv"


def _published_params_m() -> dict[str, float]:
    """open_clip's published model_profile.csv (architecture -> total Mparams), used to skip giants."""
    if not PROFILE_CSV.is_file():
        return {}
    with open(PROFILE_CSV) as handle:
        return {r["model"]: float(r["mparams"]) for r in csv.DictReader(handle)}


class Timeout(Exception):
    pass


def _alarm(seconds: int):
    def handler(signum, frame):
        raise Timeout(f"over {seconds}s")

    signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)


def _measured_widths() -> dict[str, str]:
    if not HEADS_CSV.is_file():
        return {}
    with open(HEADS_CSV) as handle:
        return {f"{r['dataset']}/{r['threat_model']}/{r['name']}": r["head_in_features"] for r in csv.DictReader(handle)}


def _input_for(loaded) -> torch.Tensor:
    from PIL import Image

    if loaded.model_id.startswith("robustbench:cifar"):
        size = 32  # CIFAR entries take the image as it is (ToTensor)
    else:
        size = 512 if "288" in str(loaded.preprocessing) else 256
    image = Image.new("RGB", (size, size), (120, 80, 200))
    x = loaded.transform(image) if loaded.transform is not None else torch.rand(3, 32, 32)
    torch.manual_seed(0)
    return torch.rand(2, *x.shape)


def _headless_matches(loaded, x: torch.Tensor, feats: torch.Tensor) -> str:
    heads = loaded.detail["heads"]
    if len(heads) != 1:
        return "n/a (ensemble)"
    clone = copy.deepcopy(loaded.module)
    parent_name, _, leaf = heads[0].rpartition(".")
    parent = clone.get_submodule(parent_name) if parent_name else clone
    setattr(parent, leaf, nn.Identity())
    with torch.no_grad():
        ref = clone(x)
    ref = ref.reshape(ref.shape[0], -1).float()
    return "yes" if ref.shape == feats.shape and torch.allclose(ref, feats, rtol=1e-4, atol=1e-5) else "NO"


def _done_rows(name: str) -> list[dict]:
    """Rows of an earlier, interrupted run of the same table (``--resume``)."""
    path = RESULTS / f"sources_coverage_{name}.csv"
    if not path.is_file():
        return []
    with open(path) as handle:
        return list(csv.DictReader(handle))


def robustbench_rows(timeout: int, only: list[str] | None, part: str | None = None, resume: bool = False,
                     check_params_m: float = 60.0) -> list[dict]:
    from ldr_plugin.sources import get_source

    source = get_source("robustbench")
    widths = _measured_widths()
    ids = only or source.list_ids()
    if part:  # "i/k": the i-th of k interleaved shares, so k processes can share the work
        i, k = map(int, part.split("/"))
        ids = ids[i::k]
    table = f"robustbench_part{part.replace('/', 'of')}" if part else "robustbench"
    rows = _done_rows(table) if resume else []
    done = {r["id"] for r in rows}
    ids = [i for i in ids if i not in done]
    for n, ident in enumerate(ids, 1):
        row = {"id": ident, "status": "", "heads": "", "n_heads": 0, "feat_dim": "", "csv_head_in_features":
               widths.get(ident, ""), "headless_equal": "", "params_M": "", "seconds": "", "reason": ""}
        start = time.perf_counter()
        try:
            _alarm(timeout)
            loaded = source.build_random(ident)
            row["params_M"] = round(sum(p.numel() for p in loaded.module.parameters()) / 1e6, 2)
            row["heads"] = ";".join(loaded.detail["heads"])
            row["n_heads"] = len(loaded.detail["heads"])
            x = _input_for(loaded)
            feats = loaded.extract(x, ("penultimate", "logits"))
            row["feat_dim"] = feats["penultimate"].shape[1]
            if row["params_M"] <= check_params_m:
                row["headless_equal"] = _headless_matches(loaded, x, feats["penultimate"])
            else:  # a deep copy and a second forward of a large model: skipped to bound the run
                row["headless_equal"] = f"not checked (> {check_params_m:g}M params)"
            row["status"] = "ok" if row["n_heads"] == 1 else "ok_ensemble_concat"
        except Timeout as exc:
            row["status"], row["reason"] = "timeout", str(exc)
        except Exception as exc:  # noqa: BLE001 -- every failure is a table row with its reason
            row["status"], row["reason"] = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        finally:
            signal.alarm(0)
        row["seconds"] = round(time.perf_counter() - start, 2)
        print(f"[{n}/{len(ids)}] {ident}: {row['status']} {row['feat_dim']} {row['reason']}", flush=True)
        rows.append(row)
        _write(rows, table)  # progress kept
        loaded = None
        gc.collect()
    return rows


def openclip_rows(timeout: int, max_params_m: float, resume: bool = False, reverse: bool = False) -> list[dict]:
    from ldr_plugin.sources import get_source

    source = get_source("openclip")
    built: dict[str, dict] = {}
    table = "openclip_reversed" if reverse else "openclip"  # a second process can work from the end
    rows = _done_rows(table) if resume else []
    done = {r["id"] for r in rows} | ({r["id"] for r in _done_rows("openclip")} if reverse else set())
    ids = [i for i in source.list_ids() if i not in done][:: -1 if reverse else 1]
    for n, ident in enumerate(ids, 1):
        arch = ident.split("/", 1)[0]
        row = {"id": ident, "status": "", "quick_gelu": "", "image_size": "", "feat_dim": "", "params_M": "",
               "seconds": "", "reason": ""}
        start = time.perf_counter()
        try:
            _alarm(timeout)
            plan = source.plan(ident)
            row["quick_gelu"] = plan.quick_gelu
            key = f"{plan.model_name}|quick_gelu={plan.quick_gelu}"  # each built variant once
            if key not in built:
                built[key] = _build_openclip(source, ident, max_params_m)
            result = built[key]
            row.update({k: result[k] for k in ("status", "feat_dim", "params_M", "reason", "image_size")})
        except Timeout as exc:
            built.setdefault(f"{arch}|quick_gelu={row['quick_gelu']}",
                             {"status": "timeout", "feat_dim": "", "params_M": "", "reason": str(exc), "image_size": ""})
            row["status"], row["reason"] = "timeout", str(exc)
        except Exception as exc:  # noqa: BLE001 -- every failure is a table row with its reason
            row["status"], row["reason"] = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        finally:
            signal.alarm(0)
        row["seconds"] = round(time.perf_counter() - start, 2)
        print(f"[{n}/{len(ids)}] {ident}: {row['status']} {row['feat_dim']} {row['reason']}", flush=True)
        rows.append(row)
        _write(rows, table)  # progress kept
        gc.collect()
    return rows


def _build_openclip(source, ident: str, max_params_m: float) -> dict:
    from PIL import Image

    arch = ident.split("/", 1)[0]
    estimate = _published_params_m().get(arch.removesuffix("-quickgelu")) or source.estimated_params_m(ident)
    if estimate is not None and estimate > max_params_m:
        return {"status": "skipped_large", "feat_dim": "", "params_M": round(estimate, 1), "image_size": "",
                "reason": f"~{estimate:.0f}M params > --max-params-m {max_params_m:g}"}
    loaded = source.build_random(ident)
    x = loaded.transform(Image.new("RGB", (300, 240), (10, 200, 30))).unsqueeze(0)
    feats = loaded.extract(x, ("image_embeds", "image_embeds_raw"))
    norm = float(feats["image_embeds"].norm(dim=1).mean())
    ok = abs(norm - 1) < 1e-4 and feats["image_embeds_raw"].shape == feats["image_embeds"].shape
    return {"status": "ok" if ok else "bad_norm", "feat_dim": feats["image_embeds"].shape[1],
            "params_M": round(sum(p.numel() for p in loaded.module.parameters()) / 1e6, 1),
            "image_size": "x".join(map(str, x.shape[-2:])), "reason": "" if ok else f"norm {norm}"}


def _write(rows: list[dict], name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"sources_coverage_{name}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _summary(rows: list[dict], name: str) -> None:
    from collections import Counter

    counts = Counter(r["status"] for r in rows)
    print(f"\n{name}: {len(rows)} entries; " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    if name == "robustbench":
        single = [r for r in rows if r["status"] == "ok"]
        equal = sum(r["headless_equal"] == "yes" for r in single)
        width_ok = sum(str(r["feat_dim"]) == str(r["csv_head_in_features"]).split(".")[0] for r in single)
        print(f"single-head entries with features: {len(single)}; equal to the headless forward: {equal}; "
              f"width equal to robustbench_zoo_heads.csv: {width_ok}")
    for r in rows:
        if not r["status"].startswith("ok"):
            print(f"  {r['id']}: {r['status']} {r['reason']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["robustbench", "openclip"], required=True)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per entry")
    parser.add_argument("--max-params-m", type=float, default=1000.0, help="OpenCLIP: skip larger architectures")
    parser.add_argument("--only", nargs="*", default=None, help="RobustBench ids to check (default: all)")
    parser.add_argument("--part", default=None, help="RobustBench: 'i/k' = every k-th id from the i-th (parallel runs)")
    parser.add_argument("--reverse", action="store_true", help="OpenCLIP: work from the end of the list")
    parser.add_argument("--resume", action="store_true", help="keep the rows of an interrupted run, do the rest")
    parser.add_argument("--check-params-m", type=float, default=60.0,
                        help="RobustBench: compare with the headless forward only up to this size")
    parser.add_argument("--merge", type=int, default=None, help="RobustBench: merge k part tables and summarise")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    if args.merge and args.source == "openclip":  # the forward and the reversed tables, first row per id wins
        from ldr_plugin.sources import get_source

        by_id: dict[str, dict] = {}
        for name in ("openclip", "openclip_reversed"):
            for row in _done_rows(name):
                by_id.setdefault(row["id"], row)
        rows = [by_id[i] for i in get_source("openclip").list_ids() if i in by_id]
    elif args.merge:
        rows = []
        for i in range(args.merge):
            with open(RESULTS / f"sources_coverage_robustbench_part{i}of{args.merge}.csv") as handle:
                rows += list(csv.DictReader(handle))
        from ldr_plugin.sources import get_source

        order = {ident: n for n, ident in enumerate(get_source("robustbench").list_ids())}
        rows.sort(key=lambda r: order.get(r["id"], len(order)))
    elif args.source == "robustbench":
        rows = robustbench_rows(args.timeout, args.only, args.part, args.resume, args.check_params_m)
    else:
        rows = openclip_rows(args.timeout, args.max_params_m, args.resume, args.reverse)
    name = "openclip_reversed" if args.source == "openclip" and args.reverse and not args.merge else args.source
    print(f"table: {_write(rows, name)}")
    _summary(rows, args.source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
