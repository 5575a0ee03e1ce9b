"""An unreachable Ray address is refused in one line within seconds, before anything starts."""

import socket
import subprocess
import sys
import time

import pytest

from a3c_exp.runtime.cluster import UnreachableCluster, check_ray_address, split_address
from tests.helpers import cli_env


def test_addresses_split_into_host_and_port():
    assert split_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert split_address("[::1]:6379") == ("::1", 6379)
    assert split_address("ray://head") == ("head", 10001)
    assert split_address("ray://head:9000") == ("head", 9000)
    with pytest.raises(UnreachableCluster, match=r"runtime.address='head': allowed: null"):
        split_address("head")


def test_a_port_nobody_listens_on_is_refused_naming_the_address():
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UnreachableCluster) as info:
        check_ray_address(f"127.0.0.1:{port}", timeout=2)
    message = str(info.value)
    assert message.startswith(f"runtime.address='127.0.0.1:{port}': no Ray cluster answers")
    assert "\n" not in message


def test_a_listening_address_and_a_local_ray_pass():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_ray_address(f"127.0.0.1:{server.getsockname()[1]}", timeout=2)
    check_ray_address(None)


def _train_cli(tmp_path, *overrides):
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "a3c_exp.train", *overrides, f"hydra.run.dir={tmp_path}/run"],
        capture_output=True,
        text=True,
        timeout=180,
        env=cli_env(),
        cwd=tmp_path,
    )
    return result, time.monotonic() - start


def test_cli_refuses_an_unreachable_ray_address_within_30_seconds(tmp_path):
    # start-up alone (Python, Hydra) is measured by a refusal that needs no probe: on a loaded
    # machine it takes far longer than the 4 s of the whole refusal on an idle one
    refused, startup = _train_cli(tmp_path, "env=cartpole", "workers=0")
    assert refused.returncode == 2
    result, elapsed = _train_cli(
        tmp_path, "env=cartpole", "runtime=ray", "runtime.address=127.0.0.1:1"
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: runtime.address='127.0.0.1:1': no Ray cluster answers")
    assert elapsed - startup < 30
    assert not (tmp_path / "run" / "checkpoints").exists()
