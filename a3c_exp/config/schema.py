"""The config's schema: frozen dataclasses, one per section, a comment on every field.

This module is the ground floor of the package: it imports nothing of ``a3c_exp``. Loading
(Hydra's ConfigStore, parsing, ``load_config``) is in ``a3c_exp.config.load``; the rules a
value must follow are checked by the part that uses it (``a3c_exp.config.checks`` for the
config's own ranges, ``a3c_exp.envs.checks``, ``a3c_exp.models.shapes``,
``a3c_exp.runtime.checks``), composed by ``a3c_exp.runtime.checks.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

OBJECTIVES = (
    "final_mean_reward",
    "best_mean_reward",
    "auc_mean_reward",
    "floor_mean_reward",
    "steps_per_second",
)
"""Summary values a job can return to a Hydra sweeper as its objective."""
VALUE_TARGETS = ("n_step", "lambda")
ANCHOR_TARGETS = ("features", "policy", "policy_reverse")


@dataclass(frozen=True)
class EnvCommon:
    """What every environment section has; each kind adds its own keys (``env.kind``)."""

    name: str = MISSING  # short label used in run names, e.g. "doom" or "cartpole"
    kind: str = MISSING  # vizdoom, gym or atari: chooses the section's schema (ENV_CONFIGS)
    frame_skip: int = 1  # each action is repeated for this many tics/frames
    reward_scale: float = 1.0  # rewards are multiplied by this before learning and reporting
    bootstrap_truncated: bool = False  # time-limit ends bootstrap from V(s) instead of failing


@dataclass(frozen=True)
class VizDoomEnvConfig(EnvCommon):
    """``env.kind: vizdoom``: a ViZDoom scenario with the tutorial's preprocessing."""

    kind: str = "vizdoom"
    scenario: str | None = None  # shipped scenario name (basic, ...) or path to a .cfg
    frame_size: int = 84  # frames are resized to frame_size x frame_size
    crop: list[int] = field(default_factory=lambda: [10, 10, 30, 30])  # top, bottom, left, right
    screen_resolution: str = "RES_160X120"  # engine render resolution
    episode_timeout: int | None = None  # tics per episode; null keeps the scenario's own
    rgb: bool = False  # colour frames (3 channels) instead of grayscale (1)
    # game variables (vizdoom.GameVariable names, e.g. [HEALTH, AMMO2]) fed to the network
    # beside the image: they ride in one extra observation channel (first pixels, values
    # clipped to 0..255) and need model.game_variables set to how many there are
    game_variables: list[str] = field(default_factory=list)
    # game variable name -> weight: its change over a step times the weight is added to the
    # reward learned from (AMMO2: 0.1 costs 0.1 a bullet); reported returns stay the game's
    reward_shaping: dict[str, float] = field(default_factory=dict)
    # one more action that presses no button: the agent can wait without moving its aim
    noop: bool = False


@dataclass(frozen=True)
class GymEnvConfig(EnvCommon):
    """``env.kind: gym``: a gymnasium environment by id."""

    kind: str = "gym"
    id: str = MISSING  # environment id, e.g. CartPole-v1 ("package.module:Env-v0" imports it)
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra gymnasium.make arguments


@dataclass(frozen=True)
class AtariEnvConfig(EnvCommon):
    """``env.kind: atari``: an ALE game with the A3C paper's preprocessing."""

    kind: str = "atari"
    id: str = MISSING  # ALE id, e.g. ALE/Pong-v5
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra gymnasium.make arguments
    frame_size: int = 84  # grayscale frames of frame_size x frame_size
    frame_stack: int = 1  # the last n frames form the observation (n channels)
    clip_rewards: bool = False  # rewards clipped to their sign (-1, 0, 1) for learning


ENV_CONFIGS: dict[str, type] = {
    "vizdoom": VizDoomEnvConfig,
    "gym": GymEnvConfig,
    "atari": AtariEnvConfig,
}
"""Environment kinds (``env.kind``) and their typed sections; the envs are in a3c_exp.envs."""


@dataclass(frozen=True)
class TargetConfig:
    """A section naming a class or function with ``_target_`` (Hydra's convention), and its
    keyword arguments: every other key of the section (``a3c_exp.config.targets``)."""

    target: str = MISSING  # dotted name of the class or function, e.g. my_pkg.nets.MyNet
    kwargs: dict[str, Any] = field(default_factory=dict)  # the section's other keys

    @property
    def name(self) -> str:
        """The target's own name (its last dotted part): a label for run names and logs."""
        return self.target.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class FactoryEnvConfig(EnvCommon):
    """An ``env`` section with ``_target_``: a ``gymnasium.Env`` subclass or a function that
    returns one, called with the section's keys other than the common ones (EnvCommon's)."""

    kind: str = "factory"
    target: str = MISSING  # dotted name of the env class or factory function
    kwargs: dict[str, Any] = field(default_factory=dict)  # its keyword arguments


EnvConfig = VizDoomEnvConfig | GymEnvConfig | AtariEnvConfig | FactoryEnvConfig


@dataclass(frozen=True)
class LossTermConfig(TargetConfig):
    """A loss term (``intrinsic``, ``aux.<name>``): a module trained with the network, named by
    ``_target_``; ``weight`` multiplies its loss in the total, its other keys are its own."""

    weight: float = 1.0  # the term's loss enters the total loss times this


TERM_KEYS = ("weight",)
"""The keys of a loss-term section the run reads itself (the rest go to the term)."""


@dataclass(frozen=True)
class LossConfig:
    """A3C loss coefficients."""

    gamma: float = 0.99  # discount factor, in (0, 1]
    gae_lambda: float = 1.0  # GAE lambda in [0, 1]; 1.0 = tutorial advantage R - V(s)
    value_coef: float = 0.5  # weight of the value loss 0.5 * sum (R - V)^2
    entropy_coef: float = 0.01  # beta: weight of the entropy bonus
    max_grad_norm: float = 40.0  # gradients are clipped to this global norm
    # null: the tutorial's squared value error; d > 0: Huber loss, linear beyond |R - V| = d, so
    # one surprising return (a death after a long survival) pulls the value with at most d
    huber_delta: float | None = None
    # what the value head regresses on: n_step, the tutorial's n-step return R; lambda, the
    # GAE lambda-return A + V (the same at gae_lambda 1), which discounts a far surprise by
    # (gamma * lambda)^k as the advantages do
    value_target: str = "n_step"
    # standardise the rollout's advantages (mean 0, std 1) before the policy loss: the policy's
    # step then has one size whatever the rewards did (a death after a long survival, a kill
    # streak); off in the tutorial's loss
    normalize_advantages: bool = False
    # weight of the distance, on the rollout's frames, from the network to a moving average of
    # its weights (a3c_exp.algo.anchor), so it cannot change faster than the average follows;
    # 0 = off (the tutorial's loss)
    anchor_coef: float = 0.0
    # per-update decay of that average of the weights each worker pulls (0.99: ~100 updates)
    anchor_decay: float = 0.99
    # what is kept near the average's: features, half the squared distance of the encoder's
    # outputs; policy, KL(average's policy || policy), which also holds back a policy growing
    # surer than the average; policy_reverse, KL(policy || average's policy), which lets it grow
    # surer of an action the average already takes and holds back one spreading to actions the
    # average does not take
    anchor_on: str = "features"
    # distance per env step (the units of Losses/Anchor Drift) the pull lets pass: it acts only
    # on a rollout whose mean distance from the average is above it, and only on the excess, so
    # a policy may learn freely and is held back only when it runs away; 0 = always pull
    anchor_margin: float = 0.0


@dataclass(frozen=True)
class WandbConfig:
    """``logger=wandb``: one W&B run per training job (section ``logger.wandb``)."""

    project: str = "a3c-exp"  # W&B project
    entity: str | None = None  # W&B entity (user or team); null = the default one
    group: str | None = None  # W&B group; null = the sweep's group in a --multirun (derived)
    tags: list[str] = field(default_factory=list)  # W&B tags
    job_type: str = "train"  # W&B job type
    name: str | None = None  # W&B run name; null = built from the job's overrides
    # W&B run id to log to; null = the resumed checkpoint's run, or a new one (the PBT sweeper
    # sets it so a member is one W&B run across its intervals)
    id: str | None = None
    mode: str = "offline"  # W&B mode: offline (default, no network), online or disabled
    log_checkpoints: bool = False  # log the final and best checkpoints as W&B model artifacts


@dataclass(frozen=True)
class TensorBoardConfig:
    """``logger=tensorboard``: TensorBoard event files in ``<run dir>/tensorboard``."""

    flush_secs: float = 10.0  # seconds between writes of the event file to disk


SINK_CONFIGS: dict[str, type] = {"wandb": WandbConfig, "tensorboard": TensorBoardConfig}
"""Built-in metric sinks (``logger.<name>``) and their typed sections; any other name under
``logger`` must name its sink class with ``_target_``. The sinks are in a3c_exp.reporting."""


@dataclass(frozen=True)
class ConvLSTMConfig:
    """``model=conv_lstm``: the tutorial's conv stack, fc layer and LSTM (ConvLSTMActorCritic)."""

    name: str = "conv_lstm"  # registry name of the network
    channels: list[int] = field(default_factory=lambda: [16, 32])  # output channels per conv
    kernel_sizes: list[int] = field(default_factory=lambda: [8, 4])  # kernel size per conv
    strides: list[int] = field(default_factory=lambda: [4, 2])  # stride per conv
    fc_size: int = 256  # units of the fully connected layer after the convs
    lstm_size: int = 256  # LSTM units; 0 = no LSTM (feed-forward)
    obs_normalization: str = "standardize"  # standardize (per frame) or scale (/255, tutorial)
    # game variables carried by the observation's last channel (env.game_variables: same count);
    # they join the fc features, divided by 100. 0 = every channel is image
    game_variables: int = 0
    # after each conv and the fc layer: relu (the tutorial) or elu, whose units cannot die
    # (no zero gradient below 0); tanh too
    activation: str = "relu"
    # LayerNorm on the fc layer's outputs before its nonlinearity: each frame's features keep
    # zero mean and unit variance (then a learned gain and bias), so the LSTM's input cannot
    # drift as a whole with one update of the layers below
    layer_norm: bool = False
    # the value on a trunk of its own (a second copy of the convs, fc and LSTM): the value loss
    # no longer moves the policy's layers, nor a change of the policy's features the value;
    # about twice the network's cost per step
    separate_critic: bool = False


@dataclass(frozen=True)
class MLPConfig:
    """``model=mlp``: fully connected encoder for vector observations (MLPActorCritic)."""

    name: str = "mlp"  # registry name of the network
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])  # units per hidden layer
    lstm_size: int = 0  # LSTM units after the encoder; 0 = none
    activation: str = "tanh"  # tanh, relu or elu


@dataclass(frozen=True)
class AdamConfig:
    """``optim=shared_adam``: Adam with moments in shared memory (SharedAdam)."""

    name: str = "shared_adam"  # registry name of the optimizer
    lr: float = 1e-4  # learning rate
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # moment decay rates
    eps: float = 1e-8  # added to the root of the second moment
    weight_decay: float = 0.0  # L2 penalty
    amsgrad: bool = False  # keep the maximum of the second moments
    # per-update policy change (mean KL, old || new) the learning rate is kept near: above
    # twice it the rate falls 1.5x, below half it rises 1.5x, never above lr; null = fixed lr
    kl_target: float | None = None
    # env steps (all workers) over which the learning rate falls linearly from lr to
    # anneal_to x lr, counted from the run's start and kept across resumes; null = no anneal
    anneal_steps: int | None = None
    # the share of lr the anneal ends at and keeps after anneal_steps (0 = the rate ends at zero)
    anneal_to: float = 0.0


@dataclass(frozen=True)
class RMSpropConfig:
    """``optim=shared_rmsprop``: RMSProp with shared statistics (SharedRMSprop), as in the paper."""

    name: str = "shared_rmsprop"  # registry name of the optimizer
    lr: float = 7e-4  # learning rate
    alpha: float = 0.99  # decay of the squared-gradient average
    eps: float = 0.1  # added to the root of the squared-gradient average
    weight_decay: float = 0.0  # L2 penalty
    momentum: float = 0.0  # momentum factor
    centered: bool = False  # normalise by the variance instead of the second moment
    # per-update policy change (mean KL, old || new) the learning rate is kept near: above
    # twice it the rate falls 1.5x, below half it rises 1.5x, never above lr; null = fixed lr
    kl_target: float | None = None
    # env steps (all workers) over which the learning rate falls linearly from lr to
    # anneal_to x lr, counted from the run's start and kept across resumes; null = no anneal
    anneal_steps: int | None = None
    # the share of lr the anneal ends at and keeps after anneal_steps (0 = the rate ends at zero)
    anneal_to: float = 0.0


@dataclass(frozen=True)
class LocalRuntimeConfig:
    """``runtime=local``: worker processes on this machine sharing memory (Hogwild)."""

    kind: str = "local"  # registry name of the runtime
    start_method: str = "forkserver"  # torch.multiprocessing start method: forkserver or spawn
    # pin worker i and its engines to CPU i mod (CPUs available): true, false, or auto = pin
    # when workers >= CPUs (then the run uses every CPU anyway, so parallel jobs stay balanced)
    pin_cpus: Any = "auto"
    # the CPU of each worker (worker i gets worker_cpus[i mod len]); null = none. Derived from
    # pin_cpus before the run starts unless set explicitly
    worker_cpus: list[int] | None = None
    # serialise the (~1 ms) shared optimizer step; see docs/algorithm.md "Hogwild and the
    # optimizer lock"
    lock_optimizer_step: bool = True


@dataclass(frozen=True)
class RayRuntimeConfig:
    """``runtime=ray``: worker actors and a parameter server on a local or joined Ray cluster."""

    kind: str = "ray"  # registry name of the runtime
    address: str | None = None  # null starts a local Ray; "auto", host:port or ray://host:port
    cpus_per_worker: float = 1.0  # CPUs each worker actor reserves
    server_cpus: float = 0.0  # CPUs the parameter-server actor reserves
    report_seconds: float = 1.0  # a worker reports its updates (and can stop) this often
    spread: bool = True  # place the worker actors on as many nodes as possible


RUNTIME_CONFIGS: dict[str, type] = {"local": LocalRuntimeConfig, "ray": RayRuntimeConfig}
"""Runtime kinds (``runtime.kind``) and their typed sections; the pools are in a3c_exp.runtime."""

RUNTIME_KINDS = tuple(RUNTIME_CONFIGS)


MODEL_CONFIGS: dict[str, type] = {"conv_lstm": ConvLSTMConfig, "mlp": MLPConfig}
"""Network names (``model.name``) and their typed sections; the networks are in a3c_exp.models."""

OPTIM_CONFIGS: dict[str, type] = {"shared_adam": AdamConfig, "shared_rmsprop": RMSpropConfig}
"""Optimizer names (``optim.name``) and their typed sections; the classes are in a3c_exp.optim."""

ModelConfig = ConvLSTMConfig | MLPConfig | TargetConfig
OptimConfig = AdamConfig | RMSpropConfig
RuntimeConfig = LocalRuntimeConfig | RayRuntimeConfig


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run. After ``load_config`` it is frozen and fully typed."""

    env: Any = MISSING  # environment: kind + its settings (conf/env/; typed by ENV_CONFIGS)
    model: Any = MISSING  # network: name + its arguments (conf/model/; typed by MODEL_CONFIGS)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: Any = MISSING  # shared optimizer: name + its arguments (conf/optim/; OPTIM_CONFIGS)
    # metric sinks besides the console and metrics.csv, by name: wandb, tensorboard (typed by
    # SINK_CONFIGS) or a sink of your own with _target_ (conf/logger/; logger=[wandb,tensorboard])
    logger: Any = field(default_factory=dict)
    # an exploration bonus trained with the network (conf/intrinsic/: none, icm): a loss term
    # section with _target_ whose intrinsic reward is added to the rollout's rewards; null = none
    intrinsic: Any = None
    # auxiliary loss terms trained with the network, by name (conf/aux/; aux=[name,...])
    aux: Any = field(default_factory=dict)
    runtime: Any = MISSING  # worker backend: kind + its settings (conf/runtime/; RUNTIME_CONFIGS)
    experiment: str | None = None  # name of the experiment preset in use (conf/experiment/*)
    workers: int = 1  # asynchronous worker processes (train.yaml defaults it to the CPU count)
    rollout_len: int = 30  # environment steps per update (n of the n-step return)
    envs_per_worker: int = 1  # envs each worker steps side by side, acting in one batched pass
    total_steps: int = 1_000_000  # stop after this many environment (agent) steps, all workers
    max_time: float | None = None  # stop after this many seconds of training; null = no limit
    target_reward: float | None = None  # stop once the last-100 mean reaches it; null = never
    # the run's seed (>= 0): every random stream of the run (each worker's envs and sampling,
    # after each restart or resume) is derived from it with numpy.random.SeedSequence, so runs
    # with different seeds share no stream
    seed: int = 0
    checkpoint_every: int = 100_000  # env steps between periodic checkpoints (0 = final only)
    keep_checkpoints: int = 3  # periodic checkpoints kept besides last.ckpt
    # checkpoint to continue from, or "latest" (<run dir>/checkpoints/last.ckpt); after
    # load_config's caller resolves it, always an absolute path (derived)
    resume: str | None = None
    # resume: false starts the optimizer's statistics afresh (needed to resume under another
    # optimizer); the network weights and counters are restored either way
    resume_optimizer_state: bool = True
    log_every: float = 5.0  # seconds between metric reports (console, CSV, W&B)
    objective: str = "final_mean_reward"  # what a job returns to sweepers (see OBJECTIVES)
    # seconds of wall time between episodes worker 0 saves as a GIF (and to W&B): the first
    # episode, then the next one to start after each interval; 0 = never
    video_every: float = 120.0
    shutdown_grace: float = 5.0  # seconds workers get to stop before they are terminated
    max_restarts: int = 3  # restarts allowed per worker (crash, kill, heartbeat) before failing
    heartbeat_timeout: float = 120.0  # seconds without a message before a worker counts as hung
    max_skipped_updates: int = 100  # consecutive NaN/inf updates of one worker that stop the run
    # env steps between two reports of the running objective to a sweep's trial (pruning
    # compares trials at equal steps); set by the a3c_optuna sweeper. null = no reports
    trial_report_every: int | None = None
    trial: int | None = None  # the sweep trial this job belongs to (set by a3c_optuna; W&B groups)
    # check the command without training: compose and validate the config, open the env once,
    # build the network, loss terms and sinks' classes, print what would run, exit 0
    dry_run: bool = False


@dataclass(frozen=True)
class EvalConfig:
    """Every knob of an evaluation (``python -m a3c_exp.evaluate``; conf/eval.yaml)."""

    checkpoint: str = MISSING  # a checkpoint written by a3c_exp.train (.../checkpoints/last.ckpt)
    # packages whose classes a checkpoint may name (a network, env or loss term of your own)
    # and so get imported; this project's own is always trusted
    trusted_packages: list[str] = field(default_factory=list)
    episodes: int = 20  # episodes to play
    greedy: bool = False  # true: take the most probable action; false: sample from the policy
    seed: int = 12345  # seed of the evaluation episodes (different from training seeds)
    record: bool = False  # write a GIF of the first episode into the output directory
    max_steps: int = 100_000  # safety cap on the steps of one episode
