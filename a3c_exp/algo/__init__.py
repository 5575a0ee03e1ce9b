"""The A3C algorithm: pure loss maths, rollout containers and the Lightning module."""
