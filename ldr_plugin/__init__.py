"""ldr-plugin: LatentDR for DomainBed, k* latent-space metrics, leaderboards.

Importing this package imports no host library (DomainBed, RobustBench, open_clip) and no torch:
those are loaded lazily by the module that needs them.
"""

__version__ = "0.1.0"
