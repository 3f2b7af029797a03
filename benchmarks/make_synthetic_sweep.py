"""Write a synthetic DomainBed sweep folder in DomainBed's exact on-disk schema.

    python benchmarks/make_synthetic_sweep.py OUT_DIR --records 100000 [--seed 0]

Each run folder holds ``results.jsonl`` (one record per checkpoint: ``args``, ``env<i>_in_acc`` /
``env<i>_out_acc``, ``epoch``, ``hparams``, ``loss``, ``step``, ``step_time``) and ``done``; test
envs are every single env and every pair, as DomainBed's ``sweep`` launches by default.
"""

from __future__ import annotations

import argparse

from ldr_plugin.domainbed.synthetic_sweep import write_synthetic_sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=5, help="checkpoints per run")
    args = parser.parse_args(argv)
    n = write_synthetic_sweep(args.out_dir, n_records=args.records, seed=args.seed, steps=args.steps)
    print(f"wrote {n} records to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
