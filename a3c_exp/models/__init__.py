"""Actor-critic networks: pure ``nn.Module``s that know no environment and no optimizer."""

from a3c_exp.models.actor_critic import (
    NETWORKS,
    ActorCritic,
    ConvLSTMActorCritic,
    MLPActorCritic,
    build_model,
)

__all__ = ["NETWORKS", "ActorCritic", "ConvLSTMActorCritic", "MLPActorCritic", "build_model"]
