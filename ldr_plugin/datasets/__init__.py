"""Embedded multi-domain datasets (DomainBed interface, no DomainBed needed): see ``digits``.

Import-light: the classes are loaded from ``ldr_plugin.datasets.digits`` (torch, scikit-learn).
"""
