"""Actor-critic networks: pure ``nn.Module``s that know no environment and no optimizer."""

from a3c_exp.models.actor_critic import (
    ActorCritic,
    ConvLSTMActorCritic,
    MLPActorCritic,
    build_model,
)

__all__ = ["ActorCritic", "ConvLSTMActorCritic", "MLPActorCritic", "build_model"]
