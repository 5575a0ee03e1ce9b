"""``Agent``: the network and its loss terms, the unit the workers copy and the optimizer steps.

The global side holds one (``GlobalModel`` and ``A3CModule`` are agents with their
checkpoint's hyperparameters); every worker holds a local one built the same way, so their
parameters line up one to one (the network's first, then ``intrinsic``'s, then each of
``aux``'s in name order) and so do their state-dict keys (``net.*``, ``intrinsic.*``,
``aux.<name>.*``). Without loss terms an agent is its network alone: nothing else is built,
stored or stepped.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from a3c_exp.algo.terms import build_term
from a3c_exp.config import LossTermConfig, ModelConfig
from a3c_exp.models import build_model


@dataclass(frozen=True)
class AgentSpec:
    """What an agent is built from: the network's section and the loss terms' sections."""

    model: ModelConfig
    intrinsic: LossTermConfig | None = None
    aux: Mapping[str, LossTermConfig] = field(default_factory=dict)

    def term_keys(self) -> list[tuple[str, LossTermConfig]]:
        """``(slot key, section)`` of every term: ``intrinsic``, then ``aux.<name>`` by name."""
        keys = [("intrinsic", self.intrinsic)] if self.intrinsic is not None else []
        return keys + [(f"aux.{name}", self.aux[name]) for name in sorted(self.aux)]


class Agent(nn.Module):
    """The network (``net``) and the loss terms trained with it (``intrinsic``, ``aux``)."""

    def __init__(
        self,
        spec: AgentSpec,
        obs_shape: Sequence[int],
        n_actions: int,
        trusted: Collection[str] | None = None,
    ):
        super().__init__()
        attach_parts(self, spec, obs_shape, n_actions, trusted)

    def loss_terms(self) -> list[tuple[str, nn.Module, float]]:
        """``(slot key, module, weight)`` of every loss term, in parameter order."""
        return agent_terms(self)


def attach_parts(
    module: nn.Module,
    spec: AgentSpec,
    obs_shape: Sequence[int],
    n_actions: int,
    trusted: Collection[str] | None = None,
) -> None:
    """Build the network and the terms of ``spec`` as ``module``'s submodules (``net``,
    ``intrinsic``, ``aux``), for an ``Agent`` or a Lightning module alike.

    ``trusted``: None for the config in force; the trusted packages for a checkpoint's.
    """
    module.net = build_model(spec.model, obs_shape, n_actions, trusted)
    module.intrinsic = (
        build_term(spec.intrinsic, "intrinsic", obs_shape, n_actions, trusted)
        if spec.intrinsic is not None
        else None
    )
    module.aux = nn.ModuleDict(
        {
            name: build_term(spec.aux[name], f"aux.{name}", obs_shape, n_actions, trusted)
            for name in sorted(spec.aux)
        }
    )
    module.term_weights = {key: term.weight for key, term in spec.term_keys()}


def agent_terms(module: nn.Module) -> list[tuple[str, nn.Module, float]]:
    """The loss terms ``attach_parts`` gave ``module``, with their slot keys and weights."""
    terms: list[tuple[str, nn.Module]] = []
    if module.intrinsic is not None:
        terms.append(("intrinsic", module.intrinsic))
    terms += [(f"aux.{name}", term) for name, term in module.aux.items()]
    return [(key, term, module.term_weights[key]) for key, term in terms]


def check_agent_fits(agent: nn.Module, anchor_on_features: bool) -> None:
    """Refuse, in one line, a network without the ``encoder`` that the loss needs: for
    ``loss.anchor_on: features`` or a loss term that reads the features (``uses_features``)."""
    if hasattr(agent.net, "encoder"):
        return
    needs = [key for key, term, _ in agent_terms(agent) if getattr(term, "uses_features", False)]
    if anchor_on_features:
        needs.insert(0, "loss.anchor_on=features")
    if needs:
        from a3c_exp.config import ConfigError

        raise ConfigError(
            f"model: {type(agent.net).__qualname__} has no encoder, which {', '.join(needs)} "
            "reads (a3c_exp.models.protocol)"
        )
