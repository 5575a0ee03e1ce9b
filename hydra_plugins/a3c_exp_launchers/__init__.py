"""Hydra launcher plugin of a3c-exp: bounded local sweeps and per-job Slurm resources.

Hydra finds it because ``hydra_plugins`` is a namespace package that every plugin distribution
extends; ``config.py`` registers the configs, ``launchers.py`` holds the classes.
"""
