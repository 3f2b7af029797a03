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


class ToyDomains:
    """Three tiny domains (50 samples of 1x4x4, two classes), DomainBed's dataset interface."""

    ENVIRONMENTS = ["a", "b", "c"]
    N_STEPS = 5
    CHECKPOINT_FREQ = 2
    N_WORKERS = 0

    def __init__(self, root, test_envs, hparams):
        gen = torch.Generator().manual_seed(0)
        self.input_shape = (1, 4, 4)
        self.num_classes = 2
        self.datasets = []
        for shift in range(3):
            y = torch.randint(0, 2, (50,), generator=gen)
            x = torch.randn(50, 1, 4, 4, generator=gen) + (2 * y - 1).view(-1, 1, 1, 1) + shift
            self.datasets.append(torch.utils.data.TensorDataset(x, y))

    def __getitem__(self, index):
        return self.datasets[index]

    def __len__(self):
        return len(self.datasets)


def toy_launcher(commands):
    for command in commands:
        print("toy launcher:", command)
'''

CYCLIC_MODULE = '''
from domainbed import algorithms as host  # runs while this module is only half initialised


class Cyclic:
    host_names = list(host.ALGORITHMS)
'''

ENTRY_POINTS = """
[domainbed.algorithms]
Toy = toy_plugin_mod:Toy
{extra_algorithms}
[domainbed.hparams]
Toy = toy_plugin_mod:toy_hparams

[domainbed.datasets]
ToyDomains = toy_plugin_mod:ToyDomains
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
    (root / "toy_plugin_mod.py").write_text(TOY_MODULE)
    (root / "toy_cyclic_mod.py").write_text(CYCLIC_MODULE)
    return root


FAKE_HOST = {
    "__init__.py": "",
    "algorithms.py": '''
ALGORITHMS = ["ERM", "Mixup"]


def get_algorithm_class(algorithm_name):
    if algorithm_name not in globals():
        raise NotImplementedError("Algorithm not found: {}".format(algorithm_name))
    return globals()[algorithm_name]


class ERM:
    pass


class Mixup:
    pass
''',
    "datasets.py": '''
DATASETS = ["Debug28"]


def get_dataset_class(dataset_name):
    if dataset_name not in globals():
        raise NotImplementedError("Dataset not found: {}".format(dataset_name))
    return globals()[dataset_name]


def num_environments(dataset_name):
    return len(get_dataset_class(dataset_name).ENVIRONMENTS)


class Debug28:
    ENVIRONMENTS = ["0", "1", "2"]
''',
    "hparams_registry.py": '''
import hashlib

import numpy as np


def seed_hash(*args):
    return int(hashlib.md5(str(args).encode("utf-8")).hexdigest(), 16) % (2**31)


def _hparams(algorithm, dataset, random_seed):
    hparams = {}

    def _hparam(name, default_val, random_val_fn):
        assert name not in hparams
        hparams[name] = (default_val, random_val_fn(np.random.RandomState(seed_hash(random_seed, name))))

    _hparam("resnet_dropout", 0.0, lambda r: r.choice([0.0, 0.1, 0.5]))
    if dataset in ["Debug28", "RotatedMNIST"]:
        _hparam("lr", 1e-3, lambda r: 10 ** r.uniform(-4.5, -2.5))
        _hparam("batch_size", 64, lambda r: int(2 ** r.uniform(3, 9)))
    else:
        _hparam("lr", 5e-5, lambda r: 10 ** r.uniform(-5, -3.5))
        _hparam("batch_size", 32, lambda r: int(2 ** r.uniform(3, 5.5)))
    if algorithm == "Mixup":
        _hparam("mixup_alpha", 0.2, lambda r: 10 ** r.uniform(-1, 1))
    return hparams


def default_hparams(algorithm, dataset):
    return {a: b for a, (b, c) in _hparams(algorithm, dataset, 0).items()}


def random_hparams(algorithm, dataset, seed):
    return {a: c for a, (b, c) in _hparams(algorithm, dataset, seed).items()}
''',
    "command_launchers.py": '''
def local_launcher(commands):
    pass


REGISTRY = {"local": local_launcher}
''',
}


def make_fake_host(root: Path) -> Path:
    """A stand-in ``domainbed`` package with DomainBed's registry layout (no torch), in ``root``."""
    pkg = root / "domainbed"
    pkg.mkdir(parents=True, exist_ok=True)
    for name, text in FAKE_HOST.items():
        (pkg / name).write_text(text)
    return root
