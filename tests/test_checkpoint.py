"""Checkpoint files: atomic writes, rotation, refusal of bad files, exact optimizer restore."""

import pickle

import pytest
import torch

from a3c_exp.algo.module import A3CModule
from a3c_exp.checkpoint import CheckpointError, CheckpointManager, atomic_save, load_checkpoint

CFG = {
    "model": {"_target_": "a3c_exp.models.MLPActorCritic", "hidden_sizes": [8], "lstm_size": 4},
    "optim": {"_target_": "a3c_exp.optim.SharedAdam", "_partial_": True, "lr": 0.01},
    "loss": {"gamma": 0.99, "gae_lambda": 1.0, "value_coef": 0.5, "entropy_coef": 0.01},
}


def _trained_module():
    torch.manual_seed(0)
    module = A3CModule(CFG, [4], 2)
    optimizer = module.configure_optimizers()
    for _ in range(3):
        for param in module.net.parameters():
            param.grad = torch.randn_like(param)
        optimizer.step()
    return module, optimizer


def test_payload_round_trip_restores_weights_and_moments_exactly(tmp_path):
    module, optimizer = _trained_module()
    path = tmp_path / "a.ckpt"
    atomic_save(module.checkpoint_payload(optimizer, {"global_step": 90}), path)
    fresh = A3CModule(CFG, [4], 2)
    fresh_optimizer = fresh.configure_optimizers()
    fresh.restore(load_checkpoint(path), fresh_optimizer)
    for a, b in zip(module.state_dict().values(), fresh.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for p, q in zip(module.net.parameters(), fresh.net.parameters(), strict=True):
        for name, value in optimizer.state[p].items():
            restored = fresh_optimizer.state[q][name]
            torch.testing.assert_close(restored, value, rtol=0, atol=0)
            assert restored.is_shared()


def test_lightning_loads_the_checkpoint_without_arguments(tmp_path):
    module, optimizer = _trained_module()
    path = tmp_path / "b.ckpt"
    atomic_save(module.checkpoint_payload(optimizer, {"global_step": 1}), path)
    loaded = A3CModule.load_from_checkpoint(path)
    for a, b in zip(module.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_truncated_checkpoint_is_refused_in_one_line(tmp_path):
    module, optimizer = _trained_module()
    path = tmp_path / "c.ckpt"
    atomic_save(module.checkpoint_payload(optimizer, {"global_step": 1}), path)
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


def test_manager_keeps_last_n_and_best(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    for step, reward in [(10, 1.0), (20, 3.0), (30, 2.0)]:
        manager.save({"a3c": {"recent_rewards": [reward] * 100}, "step": step}, step, True)
    assert [p.name for p in manager.periodic_checkpoints()] == [
        "step-0000000020.ckpt",
        "step-0000000030.ckpt",
    ]
    assert torch.load(manager.best_path, weights_only=True)["step"] == 20
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["step"] == 30
    assert not list(tmp_path.glob(".*.tmp-*"))  # no temp file left behind
