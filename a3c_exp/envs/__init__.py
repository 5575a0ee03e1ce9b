"""Environments: the ViZDoom env, gymnasium envs by id, and the factory that builds either."""

from a3c_exp.envs.factory import EnvSpec, make_env, probe_env_spec

__all__ = ["EnvSpec", "make_env", "probe_env_spec"]
