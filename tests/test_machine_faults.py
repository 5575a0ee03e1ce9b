"""Faults of the machine: a full disk, a read-only or vanished directory end a run in one line
with the last good checkpoint kept; a sweep spends no trial on them; records are written whole
and read without trust. The end-to-end cases are ``scripts/faults.py``'s (a real tmpfs as root,
injected write errors otherwise)."""

from __future__ import annotations

import errno
import json
import logging

import pytest

from a3c_exp.files import append_lines, atomic_write_text, fault_line, machine_fault, read_json
from a3c_exp.sweep import UNREADABLE, read_job_records
from tests.helpers import load_script


def _faults():
    return load_script("faults")


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "job.json"
    atomic_write_text(path, '{"status": "completed"}')
    real_open = open

    def full_disk(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode:
            handle.write = lambda data: (_ for _ in ()).throw(
                OSError(errno.ENOSPC, "No space left on device")
            )
        return handle

    monkeypatch.setattr("builtins.open", full_disk)
    with pytest.raises(OSError) as info:
        atomic_write_text(path, '{"status": "failed"}')
    monkeypatch.undo()
    assert info.value.filename == str(path) and machine_fault(info.value)
    assert fault_line(info.value, tmp_path) == "no space left on device writing job.json"
    assert json.loads(path.read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["job.json"]


def test_a_write_into_a_vanished_directory_is_not_papered_over(tmp_path):
    with pytest.raises(OSError) as info:
        atomic_write_text(tmp_path / "run" / "checkpoints" / "last.ckpt", "x")
    assert machine_fault(info.value) and "directory vanished writing" in fault_line(info.value)
    assert not (tmp_path / "run").exists()


def test_empty_or_truncated_records_are_read_with_a_warning_naming_them(tmp_path, caplog):
    for job, text in (("0", ""), ("1", '{"job": 1, "status": "comp'), ("2", '{"job": 2}')):
        (tmp_path / job).mkdir()
        (tmp_path / job / "job.json").write_text(text)
    with caplog.at_level(logging.WARNING, logger="a3c_exp"):
        records = read_job_records(tmp_path)
        assert read_json(tmp_path / "missing.json") is None
    statuses = {str(r["job"]): r.get("status") for r in records}
    assert statuses == {"0": UNREADABLE, "1": UNREADABLE, "2": None}
    assert str(tmp_path / "0" / "job.json") in caplog.text and "empty" in caplog.text
    assert "truncated" in caplog.text and "missing.json" not in caplog.text


def test_appended_lines_are_whole(tmp_path):
    path = tmp_path / "trial_reports.jsonl"
    append_lines(path, ['{"step": 1}', '{"step": 2}\n'])
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'


@pytest.mark.slow
@pytest.mark.parametrize("case", ["run_full_disk", "run_read_only", "run_dir_removed"])
def test_a_run_that_cannot_write_ends_in_one_line_keeping_its_last_good_checkpoint(tmp_path, case):
    faults = _faults()
    result = faults.CASES[case](tmp_path)
    assert result.exit_code == 1, result.output[-3000:]
    assert result.last_line.startswith("error: "), result.output[-3000:]
    cause = {
        "run_full_disk": "no space left on device writing ",
        "run_read_only": "read-only file system writing ",
        "run_dir_removed": "directory vanished writing ",
    }[case]
    assert cause in result.last_line
    assert not result.traceback, result.output[-3000:]
    assert result.processes_left == 0
    if case == "run_dir_removed":  # the line does not name a checkpoint that is gone
        assert "no checkpoint left (the last, " in result.last_line, result.last_line
        assert result.checkpoint == "gone (its folder was removed)"
    else:
        assert "last good checkpoint: " in result.last_line, result.last_line
        assert result.checkpoint.startswith("loads, resumes from "), result.checkpoint


@pytest.mark.slow
def test_a_sweep_on_a_full_disk_stops_in_one_line_and_resumes_counting_no_lost_trial(tmp_path):
    faults = _faults()
    result = faults.sweep_full_disk(tmp_path, trials=3)
    assert result.exit_code == "1, then 0", result.output[-4000:]
    assert result.last_line.startswith("error: ") and "resumes" in result.last_line
    assert not result.traceback, result.output[-4000:]
    assert result.trials.startswith("3 of 3 ("), result.trials
    assert not result.trials.startswith("3 of 3 (0 not"), "the machine's trial was counted"
    listed, _, jobs = result.summary.partition(" of ")
    assert jobs.split()[0] == listed and result.summary.endswith(", 0 unreadable")
    assert result.processes_left == 0


@pytest.mark.slow
def test_a_summary_meets_an_emptied_record_with_a_warning_not_an_exception(tmp_path):
    faults = _faults()
    result = faults.grid_record_emptied(tmp_path)
    assert result.exit_code == "0, then 0", result.output[-3000:]
    assert "job record" in result.last_line and "0/job.json unreadable" in result.last_line
    assert not result.traceback
    assert result.summary == "2 of 2 jobs listed, 1 unreadable"
