"""Hydra config tree, shipped inside the package so the console scripts find it."""
