"""The documentation runs: every command and Python block in the README and under docs/.

A ``bash`` block's commands run as a reader would type them, on a small budget: a training
command with ``dry_run=true`` (composed, validated, its env opened and its network built,
nothing trained), an evaluation on a checkpoint made for the purpose, ``--help`` as it is,
``mkdocs build --strict`` into a temporary folder. A ``text`` block's ``$ command`` lines run
too, and each ``error:`` line shown under one must be what the command prints. ``python`` blocks
of a page run in order in one namespace. A block preceded by ``<!-- not-run: reason -->``, or a
command ending in ``# not run: reason``, is not run and is counted with its reason. Any other
command fails the test: a page may only show what a test runs or says why it does not.

Each case is named ``<file>:<line>``, so a renamed or removed key names the page and the block.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import cli_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->\s*$")
LINE_NOT_RUN = re.compile(r"#\s*not run:\s*(.*)$")
PLACEHOLDER = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Command:
    """One command of a page: where it is, what it says, and why it is not run (if so)."""

    page: Path
    line: int
    text: str
    not_run: str | None = None
    expected_errors: tuple[str, ...] = ()  # text blocks: the error lines shown under it

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page: Path):
    text = page.read_text()
    for match in FENCE.finditer(text):
        start_line = text[: match.start()].count("\n") + 1
        before = text[: match.start()].rstrip("\n").splitlines()
        marker = NOT_RUN.search(before[-1]) if before else None
        yield match.group(1), match.group(2), start_line + 1, marker.group(1) if marker else None


def _bash_commands(page: Path, body: str, first: int, not_run: str | None) -> list[Command]:
    commands, pending, pending_line = [], "", first
    for offset, raw in enumerate(body.splitlines()):
        line = raw.rstrip()
        if not pending:
            pending_line = first + offset
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if not full or full.startswith("#"):
            continue
        reason = LINE_NOT_RUN.search(full)
        command = re.sub(r"\s+#.*$", "", full)  # a trailing comment
        commands.append(
            Command(page, pending_line, command, not_run or (reason.group(1) if reason else None))
        )
    return commands


def _text_commands(page: Path, body: str, first: int, not_run: str | None) -> list[Command]:
    commands: list[Command] = []
    lines = body.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("$ "):
            continue
        errors = []
        for after in lines[index + 1 :]:
            if after.startswith("$ "):
                break
            if after.startswith("error: "):
                errors.append(after.strip())
        command = re.sub(r"\s+#.*$", "", line[2:].strip())
        commands.append(Command(page, first + index, command, not_run, tuple(errors)))
    return commands


def collect() -> tuple[list[Command], list[tuple[Path, int, str, str | None]]]:
    """Every command of every page, and every Python block (page, line, code, not-run)."""
    commands, python = [], []
    for page in PAGES:
        for language, body, first, not_run in _blocks(page):
            if language in ("bash", "sh", "shell"):
                commands += _bash_commands(page, body, first, not_run)
            elif language in ("text", "console"):
                commands += _text_commands(page, body, first, not_run)
            elif language == "python":
                python.append((page, first, body, not_run))
    return commands, python


COMMANDS, PYTHON_BLOCKS = collect()


def distinct(commands: list[Command]) -> list[Command]:
    """Each command to run once: the same text shown on several pages runs at its first."""
    seen: dict[tuple[str, tuple[str, ...]], Command] = {}
    for command in commands:
        seen.setdefault((command.text, command.expected_errors), command)
    return list(seen.values())


TO_RUN = distinct([c for c in COMMANDS if c.not_run is None])


def test_the_pages_show_commands_and_say_why_those_not_run_are_not():
    run = [c for c in COMMANDS if c.not_run is None]
    skipped = Counter(c.not_run for c in COMMANDS if c.not_run is not None)
    assert len(run) >= 20, "the docs lost the commands their tests run"
    assert all(reason.strip() for reason in skipped), "a not-run marker without a reason"


def _once(tmp_path_factory, name: str, make, wait: bool = True) -> Path | None:
    """``make(folder)`` run once for the whole session, whichever xdist worker asks first; the
    others reuse its folder (the pytest-xdist recipe, with a file lock). While another worker
    is making it, ``wait=False`` returns None at once instead of waiting."""
    from filelock import FileLock, Timeout

    shared = tmp_path_factory.getbasetemp().parent  # the same for every worker of a session
    folder, done = shared / name, shared / f"{name}.done"
    if not done.is_file():
        try:
            with FileLock(str(shared / f"{name}.lock"), timeout=-1 if wait else 0):
                if not done.is_file():
                    folder.mkdir(exist_ok=True)
                    make(folder)
                    done.touch()
        except Timeout:
            return None
    return folder


def _train_checkpoint(folder: Path) -> None:
    run_dir = folder / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "a3c_exp.train",
            f"hydra.run.dir={run_dir}",
            "experiment=cartpole_smoke",
            "total_steps=1000",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=cli_env(),
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A small CartPole checkpoint for the pages' evaluation and resume commands."""
    folder = _once(tmp_path_factory, "docs-checkpoint", _train_checkpoint)
    return folder / "run" / "checkpoints" / "last.ckpt"


def _runnable(command: Command, tmp: Path, checkpoint: Path) -> tuple[list[str], Path, dict]:
    """The argv, working directory and environment that run ``command`` on a small budget."""
    words = shlex.split(command.text)
    cwd, env = ROOT, cli_env()
    if len(words) > 2 and words[0] == "cd" and words[2] == "&&":
        cwd = ROOT / words[1]
        words = words[3:]
    while words and re.match(r"^[A-Z_]+=", words[0]):
        name, _, value = words.pop(0).partition("=")
        if name == "PYTHONPATH":
            value = os.pathsep.join([str((cwd / value).resolve()), env.get("PYTHONPATH", "")])
        env[name] = value
    if words[:1] == ["mkdocs"] or words[:1] == [".venv/bin/mkdocs"]:
        return (
            [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp / "site")],
            ROOT,
            env,
        )
    script = words[:1] == ["python"] and words[1:2] and words[1].startswith("scripts/")
    if script and command.expected_errors:  # a refusal: it stops before any work, run it whole
        return [sys.executable, *words[1:]], cwd, env
    if words[:3] not in (["python", "-m", "a3c_exp.train"], ["python", "-m", "a3c_exp.evaluate"]):
        pytest.fail(f"{command.id}: no test runs `{command.text}`; mark it <!-- not-run: why -->")
    module, args = words[2], []
    for arg in words[3:]:
        key, _, value = arg.partition("=")
        if key in ("checkpoint", "resume") and value not in ("latest", "null"):
            arg = f"{key}={checkpoint}"  # the page's path is an example: this one exists
        elif key == "hydra.sweep.dir":
            continue  # the test's own
        elif PLACEHOLDER.search(arg):
            pytest.fail(f"{command.id}: placeholder in `{arg}`; mark the block not-run")
        args.append(arg)
    argv = [sys.executable, "-m", module, *args]
    if "--help" in args or "--cfg" in args:
        return argv, cwd, env
    if module == "a3c_exp.evaluate":
        if not any(a.startswith("checkpoint=") for a in args):
            argv.append(f"checkpoint={checkpoint}")
        return [*argv, "episodes=2", f"hydra.run.dir={tmp / 'eval'}"], cwd, env
    argv.append("dry_run=true")
    if "--multirun" in args:
        # the jobs' dry runs in this process, one after another (Hydra's basic launcher): the
        # page's launcher preset is composed and run by tests/test_launchers.py
        argv = [a for a in argv if not a.startswith("hydra/launcher=")]
        argv.append("hydra/launcher=basic")
        argv.append(f"hydra.sweep.dir={tmp / 'sweep'}")
        if "hydra/sweeper=a3c_optuna" in args:
            argv.append("hydra.sweeper.n_trials=1")
        if "hydra/sweeper=a3c_pbt" in args:
            argv += ["hydra.sweeper.population=2"]
    else:
        argv.append(f"hydra.run.dir={tmp / 'run'}")
    return argv, cwd, env


def _batchable(argv: list[str], cwd: Path, env: dict) -> bool:
    """A single training run from the repository root in the tests' environment: run in one
    interpreter with the others (``tests/docs_batch.py``); sweeps and the rest run alone."""
    return (
        argv[1:3] == ["-m", "a3c_exp.train"]
        and cwd == ROOT
        and env == cli_env()
        and not {"--help", "--cfg"} & set(argv[3:])
    )


_BATCHED: dict[str, subprocess.CompletedProcess] = {}


@pytest.fixture
def batched(tmp_path_factory, checkpoint) -> dict[str, subprocess.CompletedProcess]:
    """The batchable commands' results by command id, all run in one interpreter, once a
    session. While another xdist worker is running them, this one gets none and runs its
    command alone rather than wait idle."""
    if _BATCHED:
        return _BATCHED
    folder = _once(
        tmp_path_factory, "docs-batched", lambda f: _run_batch(f, checkpoint), wait=False
    )
    if folder is None:
        return {}
    outcomes = json.loads((folder / "results.json").read_text())
    _BATCHED.update(
        {
            id_: subprocess.CompletedProcess([], o["code"], o["stdout"], o["stderr"])
            for id_, o in outcomes.items()
        }
    )
    return _BATCHED


def _run_batch(folder: Path, checkpoint: Path) -> None:
    """Run every batchable command in one interpreter; write their results by command id."""
    ids, cases = [], []
    for index, command in enumerate(TO_RUN):
        try:
            argv, cwd, env = _runnable(command, folder / str(index), checkpoint)
        except pytest.fail.Exception:
            continue  # the command's own test reports it
        if _batchable(argv, cwd, env):
            ids.append(command.id)
            cases.append(argv[3:])
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "docs_batch.py")],
        input=json.dumps(cases),
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.splitlines()[-1])
    (folder / "results.json").write_text(json.dumps(dict(zip(ids, outcomes, strict=True))))


@pytest.mark.parametrize("command", TO_RUN, ids=lambda c: c.id)
def test_a_documented_command_runs(command, tmp_path, checkpoint, batched):
    argv, cwd, env = _runnable(command, tmp_path, checkpoint)
    if command.id in batched:
        result = batched[command.id]
    else:
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    if command.expected_errors:
        printed = [line.strip() for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(printed) == len(command.expected_errors), f"{command.id}: {output[-2000:]}"
        for shown, got in zip(command.expected_errors, printed, strict=True):
            # where the page shortens a line with "...", anything may stand
            pattern = ".*".join(re.escape(part) for part in shown.split("..."))
            same = re.fullmatch(pattern, got) is not None
            assert same, f"{command.id}: the page shows\n{shown}\nthe command prints\n{got}"
        return
    assert result.returncode == 0, f"{command.id}: {command.text}\n{output[-3000:]}"
    assert "Traceback" not in output, f"{command.id}: {command.text}\n{output[-3000:]}"


@pytest.mark.parametrize(
    "page",
    sorted({p for p, _, _, skip in PYTHON_BLOCKS if skip is None}),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_a_pages_python_blocks_run_in_order(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for block_page, line, code, skip in PYTHON_BLOCKS:
        if block_page != page or skip is not None:
            continue
        try:
            exec(compile(code, f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)
        except Exception as err:
            pytest.fail(f"{page.relative_to(ROOT)}:{line}: {type(err).__name__}: {err}")
