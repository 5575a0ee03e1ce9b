"""A package of your own with a network for a3c-exp (examples/custom_network)."""
