"""A fake installed distribution declaring a toy DomainBed algorithm (test helper, not a test).

``make_fake_dist(tmp_path)`` writes ``toyplugin-0.1.dist-info`` (METADATA + entry_points.txt) and
the module ``toy_plugin_mod`` into a folder; putting that folder on ``sys.path`` (or ``PYTHONPATH``
for a subprocess) makes ``importlib.metadata`` see the plugin exactly as a pip-installed one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

TOY_MODULE = '''
import hashlib
import math

import numpy as np
import torch


def _seed(*args):
    return int(hashlib.md5(str(args).encode("utf-8")).hexdigest(), 16) % (2**31)


class Toy(torch.nn.Module):
    """A linear classifier with DomainBed's algorithm interface."""

    def __init__(self, input_shape, num_classes, num_domains, hparams):
        super().__init__()
        self.hparams = hparams
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(input_shape), num_classes))
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=hparams["toy_lr"])

    def update(self, minibatches, unlabeled=None):
        x = torch.cat([x for x, _ in minibatches])
        y = torch.cat([y for _, y in minibatches])
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}

    def predict(self, x):
        return self.net(x)


def toy_hparams(algorithm, dataset, random_seed):
    lr = np.random.RandomState(_seed(random_seed, "toy_lr")).uniform(0.01, 0.2)
    width = np.random.RandomState(_seed(random_seed, "toy_width")).choice([16, 32, 64])
    return {"toy_lr": (0.1, lr), "toy_width": (np.int64(32), width)}  # numpy scalars on purpose
'''

ENTRY_POINTS = """
[domainbed.algorithms]
Toy = toy_plugin_mod:Toy
{extra_algorithms}
[domainbed.hparams]
Toy = toy_plugin_mod:toy_hparams
{extra_groups}
"""


def make_fake_dist(root: Path, *, name: str = "toyplugin", extra_algorithms: str = "", extra_groups: str = "") -> Path:
    """Write the fake distribution into ``root`` (created) and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        ENTRY_POINTS.format(extra_algorithms=extra_algorithms, extra_groups=textwrap.dedent(extra_groups))
    )
    if not (root / "toy_plugin_mod.py").exists():
        (root / "toy_plugin_mod.py").write_text(TOY_MODULE)
    return root
