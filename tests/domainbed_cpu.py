"""pytest plugin to run DomainBed's own unit tests on a CPU machine (``pytest -p domainbed_cpu``).

- DomainBed's ``test_models`` calls ``.cuda()`` unconditionally; here ``torch.Tensor.cuda`` and
  ``torch.nn.Module.cuda`` return the object unchanged when no CUDA device exists.
- Model tests on ``Debug224`` build ResNet-50 with pretrained weights (a download): skipped, with the reason.
- ``Fishr`` needs ``backpack-for-pytorch``: skipped when it is not installed.

Only this test process is patched: DomainBed's files are never edited.
"""

from __future__ import annotations

import importlib.util

import pytest


def pytest_configure(config):
    import torch

    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
        torch.nn.Module.cuda = lambda self, *args, **kwargs: self


def _params(item) -> str:
    # parameterized.expand writes the arguments into the generated method's docstring
    return (getattr(getattr(item, "obj", None), "__doc__", None) or "") + " " + item.name


def pytest_collection_modifyitems(config, items):
    have_backpack = importlib.util.find_spec("backpack") is not None
    for item in items:
        if not item.name.startswith("test_init_update_predict"):  # only model tests build networks
            continue
        params = _params(item)
        if "Debug224" in params:
            item.add_marker(pytest.mark.skip(reason="Debug224 needs pretrained ResNet-50 weights (a download)"))
        elif "algorithm_name='Fishr'" in params and not have_backpack:
            item.add_marker(pytest.mark.skip(reason="Fishr needs backpack-for-pytorch (not installed)"))
