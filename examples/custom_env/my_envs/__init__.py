"""A package of your own with an environment for a3c-exp (examples/custom_env)."""
