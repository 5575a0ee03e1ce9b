"""Checkpoints: atomic writes, rotation, refusal of bad or code-naming files, consistent
snapshots under concurrent steps, exact restore, and resume that follows the config in force."""

import dataclasses
import pickle
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp

from a3c_exp.algo.global_model import GlobalModel
from a3c_exp.algo.module import A3CModule, module_from_checkpoint
from a3c_exp.checkpoint import (
    CheckpointError,
    CheckpointManager,
    atomic_save,
    checkpoint_payload,
    load_checkpoint,
    resume_state,
    take_snapshot,
    upgrade_legacy_sections,
)
from a3c_exp.config import ConfigError, GymEnvConfig, as_plain_data, parse_env, refuse_call_keys
from a3c_exp.envs import EnvSpec
from a3c_exp.runtime.checks import load_validated
from a3c_exp.runtime.local_pool import LocalPool
from a3c_exp.runtime.locks import FileLock
from a3c_exp.runtime.worker import apply_update
from tests.helpers import cli_env

CFG = {
    "model": {"name": "mlp", "hidden_sizes": [8], "lstm_size": 4},
    "optim": {"name": "shared_adam", "lr": 0.01},
    "loss": {"gamma": 0.99, "gae_lambda": 1.0, "value_coef": 0.5, "entropy_coef": 0.01},
}


def _step(module, optimizer, times=3):
    for _ in range(times):
        for param in module.net.parameters():
            param.grad = torch.randn_like(param)
        optimizer.step()


def _trained_module(cfg=CFG):
    """A training run's global model (no Lightning), stepped three times."""
    torch.manual_seed(0)
    module = GlobalModel(cfg, [4], 2)
    optimizer = module.configure_optimizers()
    _step(module, optimizer)
    return module, optimizer


def _payload(module, optimizer, counters=None, applied=3):
    snapshot = take_snapshot(module, optimizer, None, torch.tensor([applied, 0, 90, 0]))
    return checkpoint_payload(module.hparams, snapshot, {"global_step": 90, **(counters or {})})


def _restored_pool(cfg, payload, tmp_path):
    """A local pool (never started) restored from ``payload``, as a resumed run does it."""
    # no fork server for a pool that is never started
    cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, start_method="spawn"))
    pool = LocalPool(cfg, EnvSpec((4,), 2), tmp_path, lambda: 0)
    pool.restore(resume_state(payload, cfg))
    return pool


def test_payload_round_trip_restores_weights_and_moments_exactly(tmp_path, compose_train):
    cfg = load_validated(compose_train(["env=cartpole", "model.hidden_sizes=[8]"]))
    module, optimizer = _trained_module(as_plain_data(cfg))
    path = tmp_path / "a.ckpt"
    atomic_save(_payload(module, optimizer, {"updates": 3}), path)
    pool = _restored_pool(cfg, load_checkpoint(path), tmp_path)
    for a, b in zip(module.state_dict().values(), pool.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for p, q in zip(module.net.parameters(), pool.model.net.parameters(), strict=True):
        for name, value in optimizer.state[p].items():
            restored = pool.optimizer.state[q][name]
            torch.testing.assert_close(restored, value, rtol=0, atol=0)
            assert restored.is_shared()
    assert pool.counts().applied == 3
    pool.close()


def test_resume_keeps_the_configs_hyperparameters_and_refuses_another_optimizer(
    compose_train, tmp_path
):
    cfg = load_validated(compose_train(["env=cartpole", "model.hidden_sizes=[8]", "optim.lr=0.01"]))
    module, optimizer = _trained_module(as_plain_data(cfg))
    payload = _payload(module, optimizer, {"updates": 3})
    changed = load_validated(
        compose_train(["env=cartpole", "model.hidden_sizes=[8]", "optim.lr=1e-5", "optim.eps=1e-6"])
    )
    pool = _restored_pool(changed, payload, tmp_path)
    group = pool.optimizer.param_groups[0]
    assert group["lr"] == 1e-5 and group["eps"] == 1e-6 and group["fused"] is True
    first = next(iter(pool.model.net.parameters()))
    assert float(pool.optimizer.state[first]["step"]) == 3.0  # the statistics did carry over

    overrides = ["env=cartpole", "model.hidden_sizes=[8]", "optim=shared_rmsprop"]
    rmsprop = load_validated(compose_train(overrides))
    with pytest.raises(ValueError, match="resume_optimizer_state=false") as info:
        resume_state(payload, rmsprop)
    assert "optim=shared_adam" in str(info.value) and "\n" not in str(info.value)
    fresh_start = load_validated(compose_train([*overrides, "resume_optimizer_state=false"]))
    other = _restored_pool(fresh_start, payload, tmp_path)
    torch.testing.assert_close(other.model.state_dict(), module.state_dict(), rtol=0, atol=0)
    first = next(iter(other.model.net.parameters()))
    assert float(other.optimizer.state[first]["step"]) == 0.0
    assert other.counts().applied == 0  # the statistics start afresh, and so does their count
    pool.close()
    other.close()


def test_lightning_loads_the_checkpoint_without_arguments(tmp_path):
    """A run's checkpoint (written from a GlobalModel, without Lightning) is A3CModule's format."""
    module, optimizer = _trained_module()
    path = tmp_path / "b.ckpt"
    atomic_save(_payload(module, optimizer), path)
    loaded = A3CModule.load_from_checkpoint(path)
    assert list(loaded.state_dict()) == list(module.state_dict())
    for a, b in zip(module.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert dict(loaded.hparams) == module.hparams


def test_format_1_checkpoint_naming_our_own_classes_still_loads(tmp_path):
    module, optimizer = _trained_module()
    payload = _payload(module, optimizer)
    payload["hyper_parameters"]["cfg"]["model"] = {
        "_target_": "a3c_exp.models.MLPActorCritic",
        "hidden_sizes": [8],
        "lstm_size": 4,
    }
    payload["hyper_parameters"]["cfg"]["optim"] = {
        "_target_": "a3c_exp.optim.SharedAdam",
        "_partial_": True,
        "lr": 0.01,
    }
    path = tmp_path / "old.ckpt"
    atomic_save(payload, path)
    loaded, _ = module_from_checkpoint(path)
    assert loaded.model_config.name == "mlp" and loaded.optim_config.name == "shared_adam"


def _code_naming(dst):
    """Each attack shape: where in the stored config it sits, and what would be called."""
    copy = {"_target_": "shutil.copyfile", "_args_": [__file__, str(dst)]}
    return {
        "nested _target_": ("model", "hidden_sizes", [copy]),
        "top-level _target_": ("model", None, {**copy, "hidden_sizes": [8]}),
        "_partial_": ("optim", None, {"_target_": "shutil.copyfile", "_partial_": True}),
        "_args_ beside a name": ("model", None, {"name": "mlp", "_args_": [str(dst)]}),
        "in the env section": ("env", "kwargs", {"x": copy}),
    }


@pytest.mark.parametrize(
    "shape",
    [
        "nested _target_",
        "top-level _target_",
        "_partial_",
        "_args_ beside a name",
        "in the env section",
    ],
)
def test_checkpoint_naming_code_is_refused_with_no_side_effect(tmp_path, compose_train, shape):
    cfg = load_validated(compose_train(["env=cartpole", "model.hidden_sizes=[8]"]))
    module, optimizer = _trained_module(as_plain_data(cfg))
    payload = _payload(module, optimizer)
    dst = tmp_path / "copied.txt"
    section, key, value = _code_naming(dst)[shape]
    if key is None:
        payload["hyper_parameters"]["cfg"][section] = value
    else:
        payload["hyper_parameters"]["cfg"][section][key] = value
    path = tmp_path / "evil.ckpt"
    torch.save(payload, path)

    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "names code to call" in str(info.value)
    with pytest.raises(Exception, match="names code to call"):
        A3CModule.load_from_checkpoint(path, weights_only=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "a3c_exp.evaluate",
            f"checkpoint={path}",
            f"hydra.run.dir={tmp_path}/eval",
        ],
        capture_output=True,
        text=True,
        timeout=180,  # importing Lightning takes 10-25 s on a loaded machine
        env=cli_env(),
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0] and str(path) in lines[0]
    assert not dst.exists()  # nothing was called


def test_truncated_checkpoint_is_refused_in_one_line(tmp_path):
    module, optimizer = _trained_module()
    path = tmp_path / "c.ckpt"
    atomic_save(_payload(module, optimizer), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "cannot be read" in message and "\n" not in message


class Payload:
    """A pickled object that would run code when unpickled."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_carrying_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "a3c": {}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    plain_pickle = tmp_path / "plain.ckpt"
    plain_pickle.write_bytes(pickle.dumps({"state_dict": Payload()}))
    with pytest.raises(CheckpointError, match=str(plain_pickle.name)):
        load_checkpoint(plain_pickle)


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an a3c-exp checkpoint"):
        load_checkpoint(path)


def test_manager_keeps_last_n_and_best_and_records_the_best_it_wrote(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    for step, reward in [(10, 1.0), (20, 3.0), (30, 2.0)]:
        manager.save({"a3c": {"recent_rewards": [reward] * 100}, "step": step}, step, True)
    assert [p.name for p in manager.periodic_checkpoints()] == [
        "step-0000000020.ckpt",
        "step-0000000030.ckpt",
    ]
    assert torch.load(manager.best_path, weights_only=True)["step"] == 20
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["step"] == 30 and last["a3c"]["best_checkpoint_reward"] == 3.0
    assert not list(tmp_path.glob(".*.tmp-*"))  # no temp file left behind
    # a resumed run compares against the best checkpoint, not the best ever seen in training
    resumed = CheckpointManager(tmp_path, keep=2, best_reward=last["a3c"]["best_checkpoint_reward"])
    resumed.save({"a3c": {"recent_rewards": [2.5] * 100}, "step": 40}, 40, False)
    assert torch.load(resumed.best_path, weights_only=True)["step"] == 20
    resumed.save({"a3c": {"recent_rewards": [float("nan")] + [3.5] * 100}, "step": 50}, 50, False)
    assert torch.load(resumed.best_path, weights_only=True)["step"] == 50


def _stepper(module, optimizer, lock, counter, stop, started):
    """A worker stand-in: applies 30-step updates as fast as it can, under the step lock."""
    torch.manual_seed(int(counter[0]) + 1)
    started.set()
    while not stop.is_set():
        for param in module.net.parameters():
            param.grad = torch.randn_like(param)
        apply_update(optimizer, lock, counter, 30, 1)


def test_snapshot_taken_while_others_step_is_one_consistent_state(tmp_path):
    module, optimizer = _trained_module()
    module.net.share_memory()
    counter = torch.tensor([3, 0, 0, 0], dtype=torch.int64).share_memory_()
    lock = FileLock(tmp_path / "lock")
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    starts = [ctx.Event() for _ in range(2)]  # two workers stepping at once
    procs = [
        ctx.Process(target=_stepper, args=(module, optimizer, lock, counter, stop, started))
        for started in starts
    ]
    for proc in procs:
        proc.start()
    try:
        for started in starts:
            assert started.wait(120)
        time.sleep(0.5)
        snapshot = take_snapshot(module, optimizer, lock, counter)
        reference = {k: v.clone() for k, v in snapshot.weights.items()}
        moments = [
            {k: v.clone() for k, v in s.items()} for s in snapshot.optimizer_state["state"].values()
        ]
        time.sleep(0.5)  # a slow writer: the workers keep stepping before the file is written
        path = tmp_path / "during.ckpt"
        atomic_save(checkpoint_payload(module.hparams, snapshot, {"global_step": 1}), path)
        stepped_on = int(counter[0]) - snapshot.applied_updates
    finally:
        stop.set()
        for proc in procs:
            proc.join(10)
    assert stepped_on > 0, "the other processes did not step while the checkpoint was written"
    # the env steps and episodes were counted at the same instant as the updates
    assert snapshot.counts.steps == 30 * (snapshot.applied_updates - 3)
    assert snapshot.counts.episodes == snapshot.applied_updates - 3
    loaded = load_checkpoint(path)
    states = loaded["optimizer_states"][0]["state"]
    assert all(float(s["step"]) == loaded["a3c"]["updates"] for s in states.values())
    for saved, expected in zip(states.values(), moments, strict=True):
        for name in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(saved[name], expected[name], rtol=0, atol=0)
    for name, tensor in loaded["state_dict"].items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0)


def test_a_stored_env_section_keeps_only_the_keys_of_its_kind():
    # checkpoints written before env sections by kind stored every kind's keys
    stored = {
        "env": {"name": "cartpole", "kind": "gym", "id": "CartPole-v1", "kwargs": {}}
        | {"frame_stack": 1, "clip_rewards": False, "rgb": False, "crop": [10, 10, 30, 30]},
        "model": {"name": "mlp"},
    }
    env = parse_env(upgrade_legacy_sections(stored)["env"])
    assert env == GymEnvConfig(name="cartpole", kind="gym", id="CartPole-v1")
    with pytest.raises(ConfigError, match="names code to call"):  # call keys are kept, refused
        refuse_call_keys(
            upgrade_legacy_sections({**stored, "env": {**stored["env"], "_partial_": True}})
        )


@pytest.mark.parametrize("reached", ["some parameters", "every parameter"])
def test_a_half_applied_step_is_counted_and_made_whole_in_the_snapshot(reached, caplog):
    """A worker SIGKILLed inside the step leaves it on some parameters and uncounted."""
    module, optimizer = _trained_module()  # three whole steps
    counts = torch.tensor([3, 0, 90, 3])
    states = list(optimizer.state.values())
    hit = states[:1] if reached == "some parameters" else states
    for state in hit:
        state["step"] += 1  # the killed worker's step reached these
    snapshot = take_snapshot(module, optimizer, None, counts)
    assert snapshot.counts.applied == 4 and int(counts[0]) == 4
    assert {float(s["step"]) for s in snapshot.optimizer_state["state"].values()} == {4.0}
    assert "half-applied optimizer step" in caplog.text
    caplog.clear()
    take_snapshot(module, optimizer, None, counts)  # whole again: nothing more to say
    assert "half-applied" not in caplog.text
