"""Run many ``python -m a3c_exp.train`` command lines in one interpreter, for the docs tests.

Reads a JSON list of argument lists on stdin, runs each through the same entry point as
``python -m a3c_exp.train`` (``sys.argv`` set, Hydra parsing it) with its output captured, and
prints a JSON list of ``{"code", "stdout", "stderr"}``. The interpreter, torch and Hydra start
once instead of once a command: the pages' dry runs then take half a second each, not three.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def run(args: list[str]) -> dict[str, object]:
    """One command line's exit code and output."""
    from a3c_exp import train

    sys.argv = ["a3c_exp.train", *args]
    stdout, stderr = io.StringIO(), io.StringIO()
    code: int | str = 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            train.main()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        except BaseException as err:  # reported as the command's failure
            code = f"{type(err).__name__}: {err}"
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


if __name__ == "__main__":
    print(json.dumps([run(args) for args in json.loads(sys.stdin.read())]))
