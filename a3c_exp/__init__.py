"""a3c-exp: Asynchronous Advantage Actor-Critic experiments on CPUs."""

__version__ = "0.1.0"
