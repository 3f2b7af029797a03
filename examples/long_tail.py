"""Train ERM (plain and logit-adjusted) and LatentDR (default and long-tail mode) on long-tailed digits.

Plain PyTorch, no DomainBed: an MLP featurizer, a linear classifier, the host-free LatentDR module
(with both lambdas 0 and the long-tail mode it is ERM with the logit-adjusted loss).
    python examples/long_tail.py --imbalance 100 --steps 300 --seed 0
"""
import argparse

import torch
import torch.nn.functional as F
from torch import nn

from ldr_plugin.datasets import longtail
from ldr_plugin.latentdr import LatentDR, LatentDRConfig
from ldr_plugin.latentdr.fingerprint import input_fingerprint

DATASETS = {10: longtail.LongTailDigits10, 50: longtail.LongTailDigits50, 100: longtail.LongTailDigits100}
CONFIGS = {"erm_la": {"long_tail": "balanced", "lambda_d": 0.0, "lambda_r": 0.0}, "latentdr": {},
           "latentdr_lt": {"long_tail": "balanced"}}


def train(method: str, data, steps: int, seed: int) -> dict:
    torch.manual_seed(seed)
    x, y = data[0].tensors
    featurizer = nn.Sequential(nn.Linear(196, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256))
    classifier = nn.Linear(256, 10)
    ldr = LatentDR(256, 10, LatentDRConfig(**CONFIGS[method]), seed=seed) if method in CONFIGS else None
    params = [*featurizer.parameters(), *classifier.parameters(), *(ldr.parameters() if ldr else [])]
    opt = torch.optim.Adam(params, lr=1e-3)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,))  # with replacement, as DomainBed's loaders
        xb, yb = x[idx], y[idx]
        z = featurizer(xb)
        logits = classifier(z)
        if ldr is None:
            loss = F.cross_entropy(logits, yb)
        else:
            fp = input_fingerprint(xb)
            loss = ldr(z, yb, classifier, clean_logits=logits, fingerprints=fp).total
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ldr is not None:
            ldr.enqueue(z, fp, yb)
    with torch.no_grad():
        return longtail.long_tail_report(lambda inputs: classifier(featurizer(inputs)), data)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imbalance", type=int, choices=sorted(DATASETS), default=100)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = DATASETS[args.imbalance](None, [1], {})
    for method in ("erm", *CONFIGS):
        r = train(method, data, args.steps, args.seed)
        print(f"{method:12s} balanced {100 * r['balanced_acc']:5.1f}  many {100 * r['many_acc']:5.1f}  "
              f"medium {100 * r['medium_acc']:5.1f}  few {100 * r['few_acc']:5.1f}")
