"""Launchers: run many jobs inline, through submitit's local executor, or as Slurm job arrays.

- :func:`ldr_plugin.launchers.launch.launch` -- ``fn(item)`` for many items, returns a :class:`Summary`;
- :mod:`ldr_plugin.domainbed.launchers` -- DomainBed command launchers ``slurm`` / ``submitit_local``;
- :func:`ldr_plugin.launchers.scoring.run_cells` -- what ``ldr score --launcher local|slurm`` calls.

Nothing here imports submitit until a job is launched.
"""
