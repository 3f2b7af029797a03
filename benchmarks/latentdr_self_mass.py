"""How often LatentDR's restoration could see a sample's own input, before and after the fingerprint mask.

DomainBed's loaders sample with replacement, so a training image comes back into a batch while an
older latent of it still sits in the FIFO key bank. This trains LatentDR (built-in loop's data
path: RotatedDigitsFlat, domain 0 held out, 5 x 32 per step, DomainBed defaults) and reports, over
the last half of the steps: the share of queries whose own input is among the bank's keys, the
attention mass those keys would get without the mask (the behaviour before issue 15), and the mass
they get with it (``restoration_self_mass``, must be 0); plus duplicates per batch.

    python benchmarks/latentdr_self_mass.py [--steps 300] [--bank-sizes 1024 4096]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from ldr_plugin.datasets.digits import RotatedDigitsFlat
from ldr_plugin.domainbed.algorithm import LatentDR
from ldr_plugin.latentdr.fingerprint import input_fingerprint
from ldr_plugin.training.hparams import seed_hash
from ldr_plugin.training.loaders import infinite_batches, split_dataset

HPARAMS = {"lr": 1e-3, "weight_decay": 0.0, "nonlinear_classifier": False, "mlp_width": 256, "mlp_depth": 3,
           "mlp_dropout": 0.0, "batch_size": 32}


def measure(bank_size: int, steps: int) -> dict[str, float]:
    torch.manual_seed(0)
    dataset = RotatedDigitsFlat(None, [0], {})
    splits = [split_dataset(env, int(len(env) * 0.2), seed_hash(0, i))[1] for i, env in enumerate(dataset)]
    iters = [infinite_batches(s, None, 32, 0) for i, s in enumerate(splits) if i != 0]
    algo = LatentDR(dataset.input_shape, 10, 5, {**HPARAMS, "ldr_bank_size": bank_size})
    seen: dict[str, list[float]] = {"with_self_key": [], "unmasked_mass": [], "masked_mass": [], "dups": []}
    for step in range(steps):
        minibatches = [next(it) for it in iters]
        x = torch.cat([b[0] for b in minibatches])
        fp = input_fingerprint(x)
        bank = algo.latentdr.bank
        if step >= steps // 2 and bank.filled > 0:
            with torch.no_grad():
                keys, key_fps, _ = bank.keys()
                same = (fp[:, None] == key_fps[None, :]).float()
                z = algo.featurizer(x)
                _, weights = algo.latentdr.restoration.restore(z, keys, None)
            seen["with_self_key"].append(float((same.sum(1) > 0).float().mean()))
            seen["unmasked_mass"].append(float((weights * same).sum(1).mean()))
            seen["dups"].append(float(len(fp) - len(torch.unique(fp))))
        log = algo.update(minibatches)
        if step >= steps // 2:
            seen["masked_mass"].append(log["restoration_self_mass"])
    return {k: statistics.mean(v) for k, v in seen.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--bank-sizes", type=int, nargs="+", default=[1024, 4096])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"RotatedDigitsFlat, test env 0, 5 x 32 per step, {args.steps} steps (means over the last half)")
    print(f"{'bank':>6s} {'queries with own input in bank':>31s} {'self mass unmasked':>19s} "
          f"{'self mass masked':>17s} {'duplicates per batch':>21s}")
    for size in args.bank_sizes:
        r = measure(size, args.steps)
        print(f"{size:6d} {100 * r['with_self_key']:30.1f}% {r['unmasked_mass']:19.4f} {r['masked_mass']:17.4f} "
              f"{r['dups']:21.1f}")


if __name__ == "__main__":
    main()
