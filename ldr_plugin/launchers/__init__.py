"""Launchers: run many jobs inline, through submitit's local executor, or as Slurm job arrays.

:func:`ldr_plugin.launchers.launch.launch` runs ``fn(item)`` for many items and returns a
:class:`~ldr_plugin.launchers.summary.Summary`; ``ldr score --launcher``
(:func:`ldr_plugin.scoring.run.run_cells`), the built-in sweep and DomainBed's command launchers
``slurm`` / ``submitit_local`` (:mod:`ldr_plugin.domainbed.launchers`) all go through it.

Nothing here imports submitit until a job is launched.
"""
