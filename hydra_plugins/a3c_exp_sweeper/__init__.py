"""Hydra sweeper plugin of a3c-exp: Optuna studies that prune, keep slots busy, seed and resume.

``config.py`` registers the sweeper's schema (``hydra/sweeper=a3c_optuna`` builds on it),
``sweeper.py`` holds the thin plugin class, ``_study_runner.py`` the search itself and
``_search_space.py`` the translation of Hydra's sweep grammar into Optuna distributions (the
leading ``_`` keeps Hydra's plugin scan, which imports every other module here at start-up,
from importing Optuna for every run).
"""
