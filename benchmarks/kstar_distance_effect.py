"""When does the distance matter for k*? Euclidean vs cosine vs Mahalanobis on real features.

Feature sets (test half of sklearn digits, 899 samples, 10 classes): the raw pixels, and the
penultimate features of a small MLP and a small CNN trained on the other half (``--seeds`` seeds
each, CPU, a few seconds). For each: the coefficient of variation (CV) of the feature norms, Γ′
under each distance, the Spearman ρ of the per-class γ between Euclidean and the other two, the
number of classes whose pattern flips, and the share of samples with the same k*. Then a
controlled experiment on one MLP's features: every row multiplied by exp(s·z), z ~ N(0, 1), which
raises the norm CV and leaves cosine k* unchanged, so the Euclidean-vs-cosine gap as a function of
the norm CV is measured directly.

    python benchmarks/kstar_distance_effect.py [--seeds 3] [--epochs 60]
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.stats
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ldr_plugin.kstar import kstar_summary

DISTANCES = ("euclidean", "cosine", "mahalanobis")


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64), torch.nn.ReLU(),
                               torch.nn.Linear(64, 10))


def cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)), torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(32 * 16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


def train(make, x_tr, y_tr, seed: int, epochs: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = make()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xs, ys = torch.as_tensor(x_tr, dtype=torch.float32), torch.as_tensor(y_tr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xs), generator=g).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xs[idx]), ys[idx]).backward()
            opt.step()
    return net.eval()


def penultimate(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net[:-1](torch.as_tensor(x, dtype=torch.float32)).numpy().astype(np.float64)


def norm_cv(x: np.ndarray) -> float:
    norms = np.linalg.norm(x, axis=1)
    return float(norms.std() / norms.mean())


def compare_distances(x: np.ndarray, y: np.ndarray) -> dict:
    s = {d: kstar_summary(x, y, distance=d, dtype="float64") for d in DISTANCES}
    out = {"cv": norm_cv(x), **{f"gp_{d}": s[d].gamma_prime for d in DISTANCES}}
    ge = np.array([c.gamma for c in s["euclidean"].classes])
    for d in ("cosine", "mahalanobis"):
        go = np.array([c.gamma for c in s[d].classes])
        ok = np.isfinite(ge) & np.isfinite(go)
        out[f"rho_{d}"] = float(scipy.stats.spearmanr(ge[ok], go[ok]).statistic)
        out[f"flips_{d}"] = sum(a.pattern != b.pattern for a, b in zip(s["euclidean"].classes, s[d].classes))
        out[f"same_{d}"] = float(np.mean(s["euclidean"].kstar == s[d].kstar))
    out["shrinkage"] = s["mahalanobis"].distance_info["shrinkage"]
    return out


def line(name: str, r: dict) -> str:
    return (f"{name:<16} {r['cv']:6.3f}  {r['gp_euclidean']:7.3f} {r['gp_cosine']:7.3f} {r['gp_mahalanobis']:7.3f}  "
            f"{r['gp_cosine'] - r['gp_euclidean']:+7.3f} {r['gp_mahalanobis'] - r['gp_euclidean']:+7.3f}  "
            f"{r['rho_cosine']:6.3f} {r['rho_mahalanobis']:6.3f}  {r['flips_cosine']:3d} {r['flips_mahalanobis']:3d}  "
            f"{100 * r['same_cosine']:5.1f} {100 * r['same_mahalanobis']:5.1f}  {r['shrinkage']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    digits = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(digits.data / 16.0, digits.target, test_size=0.5, random_state=0,
                                              stratify=digits.target)
    print(f"sklearn digits: {len(y_tr)} train / {len(y_te)} test samples, 10 classes; float64 exact k*")
    print(f"{'features':<16} {'normCV':>6}  {'G′ eucl':>7} {'G′ cos':>7} {'G′ maha':>7}  {'cos-eu':>7} {'maha-eu':>7}  "
          f"{'rho cos':>6} {'rho mah':>6}  {'flips c/m':>7}  {'same k* % c/m':>11}  shrink")
    print(line("pixels", compare_distances(x_te, y_te)), flush=True)
    nets = {}
    for kind, make in (("MLP", mlp), ("CNN", cnn)):
        for seed in range(args.seeds):
            net = train(make, x_tr, y_tr, seed, args.epochs)
            acc = float((net(torch.as_tensor(x_te, dtype=torch.float32)).argmax(1).numpy() == y_te).mean())
            feats = penultimate(net, x_te)
            nets[(kind, seed)] = feats
            print(line(f"{kind} seed {seed}", compare_distances(feats, y_te)) + f"  (test acc {100 * acc:.1f}%)",
                  flush=True)
    print("\ncontrolled norm spread: MLP seed 0 features, rows x exp(s*z), z ~ N(0,1) (cosine k* unchanged)")
    print(f"{'s':>5} {'normCV':>7} {'G′ eucl':>8} {'G′ cos':>8} {'|dG′|':>7} {'rho':>6} {'flips':>5} {'same k*':>8}")
    base = nets[("MLP", 0)]
    z = np.random.default_rng(0).normal(size=(len(base), 1))
    for s in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5):
        x = base * np.exp(s * z)
        eu = kstar_summary(x, y_te, dtype="float64")
        co = kstar_summary(x, y_te, distance="cosine", dtype="float64")
        ge, gc = np.array([c.gamma for c in eu.classes]), np.array([c.gamma for c in co.classes])
        ok = np.isfinite(ge) & np.isfinite(gc)
        flips = sum(a.pattern != b.pattern for a, b in zip(eu.classes, co.classes))
        print(f"{s:5.2f} {norm_cv(x):7.3f} {eu.gamma_prime:8.3f} {co.gamma_prime:8.3f} "
              f"{abs(eu.gamma_prime - co.gamma_prime):7.3f} {scipy.stats.spearmanr(ge[ok], gc[ok]).statistic:6.3f} "
              f"{flips:5d} {100 * np.mean(eu.kstar == co.kstar):7.1f}%", flush=True)


if __name__ == "__main__":
    main()
