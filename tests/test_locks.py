"""The optimizer lock is released when its holder is killed, so no worker can freeze the run."""

import fcntl
import multiprocessing as mp
import os
import signal
import time

import pytest

from a3c_exp.runtime.locks import FileLock


def _hold_forever(lock, ready):
    with lock:
        ready.set()
        time.sleep(600)


def test_lock_excludes_and_is_released_when_its_holder_is_killed(tmp_path):
    lock = FileLock(tmp_path / "opt.lock")
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_forever, args=(lock, ready))
    holder.start()
    assert ready.wait(30)
    fd = os.open(tmp_path / "opt.lock", os.O_RDWR)  # a separate open file: must be refused
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    probe = FileLock(tmp_path / "opt.lock")
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    start = time.monotonic()
    with probe:  # the kernel released the dead holder's lock
        assert time.monotonic() - start < 1.0
    os.close(fd)
