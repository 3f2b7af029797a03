"""The built-in training loop and sweep (DomainBed semantics and file format, no DomainBed needed).

``loop.train(algorithm, dataset, test_envs, output_dir, ...)`` trains one run;
``sweep.run_sweep(SweepConfig(...), sweep_dir)`` runs DomainBed-style sweeps. Import-light: the
submodules load torch when used.
"""
