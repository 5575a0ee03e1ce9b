"""Shared optimizers: torch's maths, state in shared memory, updates seen across processes."""

import pytest
import torch
import torch.multiprocessing as mp

from a3c_exp.optim import SharedAdam, SharedRMSprop
from a3c_exp.optim.shared import load_shared_state


@pytest.mark.parametrize(
    ("shared_cls", "torch_cls", "kwargs"),
    [
        (SharedAdam, torch.optim.Adam, {"lr": 0.01}),
        (SharedRMSprop, torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.99, "eps": 0.1}),
    ],
)
def test_matches_torch_optimizer(shared_cls, torch_cls, kwargs):
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5))
    b = torch.nn.Parameter(a.detach().clone())
    shared, reference = shared_cls([a], **kwargs), torch_cls([b], **kwargs)
    for _ in range(5):
        grad = torch.randn(5)
        a.grad, b.grad = grad.clone(), grad.clone()
        shared.step()
        reference.step()
    torch.testing.assert_close(a, b)
    for name, value in shared.state[a].items():
        assert value.is_shared(), name
        torch.testing.assert_close(value, reference.state[b][name])


def _step_in_child(param, optimizer):
    param.grad = torch.ones_like(param)
    optimizer.step()


def test_child_process_updates_shared_params_and_moments():
    param = torch.nn.Parameter(torch.zeros(3))
    param.share_memory_()
    optimizer = SharedAdam([param], lr=0.1)
    ctx = mp.get_context("spawn")
    for _ in range(2):
        child = ctx.Process(target=_step_in_child, args=(param, optimizer))
        child.start()
        child.join(timeout=60)
        assert child.exitcode == 0
    state = optimizer.state[param]
    assert float(state["step"]) == 2.0  # both children's steps counted in one shared counter
    assert torch.all(state["exp_avg"] > 0)
    assert torch.all(param < 0)  # the children moved the parent's parameters


def test_load_shared_state_keeps_tensors_shared():
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = SharedAdam([param], lr=0.1)
    saved = {
        "state": {
            0: {
                "step": torch.tensor(7.0),
                "exp_avg": torch.ones(3),
                "exp_avg_sq": torch.full((3,), 2.0),
            }
        },
        "param_groups": [dict(optimizer.param_groups[0], params=[0], lr=0.5)],
    }
    before = optimizer.state[param]["exp_avg"].data_ptr()
    load_shared_state(optimizer, saved)
    state = optimizer.state[param]
    assert state["exp_avg"].data_ptr() == before and state["exp_avg"].is_shared()
    assert float(state["step"]) == 7.0 and state["exp_avg_sq"].tolist() == [2.0, 2.0, 2.0]
    assert optimizer.param_groups[0]["lr"] == 0.1  # hyperparameters stay the config's


@pytest.mark.parametrize("name", ["SharedAdam", "SharedRMSprop"])
def test_building_stepping_and_saving_never_import_the_compiler(name):
    """The shared optimizers skip torch's compile guards, whose first call imports torch._dynamo
    (seconds of CPU in every run and every worker); a fresh process proves nothing imports it."""
    import subprocess
    import sys

    code = f"""
import sys, torch
from a3c_exp.optim import {name}
net = torch.nn.Linear(4, 2)
optimizer = {name}(net.parameters(), lr=0.01)
net(torch.randn(3, 4)).sum().backward()
optimizer.step()
optimizer.zero_grad()
optimizer.state_dict()
print("torch._dynamo" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
