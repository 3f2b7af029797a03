"""pytest plugin to run DomainBed's own unit tests on a CPU machine (``pytest -p domainbed_cpu``).

DomainBed's ``test_models`` calls ``.cuda()`` unconditionally; here ``torch.Tensor.cuda`` and
``torch.nn.Module.cuda`` return the object unchanged when no CUDA device exists. Only this test
process is patched: DomainBed's files are never edited.
"""

from __future__ import annotations


def pytest_configure(config):
    import torch

    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
        torch.nn.Module.cuda = lambda self, *args, **kwargs: self
