"""Fake installed distributions for tests (see :mod:`ldr_plugin.testing`)."""

from ldr_plugin.testing import make_distribution, tiny_distribution

__all__ = ["make_distribution", "tiny_distribution"]
