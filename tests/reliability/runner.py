"""Run the bad-input table (:mod:`tests.reliability.cases`) through readlit's real command lines and judge each.

A case is one kind of bad or odd input: a tool, its command line, the inputs it needs, and what must happen: a
refusal (exit 2, one ``error:`` line containing a phrase, no run folder and no output left) or a run that works
(exit 0, with a check of what it made). Every case runs in a folder of its own; the files it names are hashed
before and after, so a run that changes an input or replaces an existing file is caught.

Outcomes, worst first: ``data_lost`` (an input or an existing file changed), ``traceback`` (exit code other than 0
or 2, or a traceback printed), ``silent_wrong`` (exit 0 where a refusal or a different result was due),
``defect`` (refused, but not on one line naming the key, or something left behind; a valid input refused; a
scenario's other failures, such as workers outliving their killed parent),
then the two good ones: ``refused`` (a clean refusal) and ``ok`` (a valid input that worked).

Commands run in a fork server (:mod:`tests.reliability.forkserver`) by default, or as real subprocesses
(``python -m readlit.X``) with ``mode="exec"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUTCOMES = ("data_lost", "traceback", "silent_wrong", "defect", "refused", "ok")
GOOD = ("refused", "ok")
MODULES = {
    "train": "readlit.train", "generate": "readlit.generate", "evaluate": "readlit.evaluate",
    "preprocess": "readlit.preprocess", "bench": "readlit.bench", "synthetic": "readlit.data.synthetic",
    "checkpoint": "readlit.checkpoint", "audio": "readlit.audio",
}


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error: ")]


@dataclass(frozen=True)
class Case:
    """One kind of bad or odd input.

    Args:
        id: a short unique name (the pytest id).
        tool: a key of :data:`MODULES`, or ``scenario`` (``run`` does the whole case).
        args: the command line; ``{case}`` is the case's folder, ``{fx.NAME}`` a shared fixture file
            (:class:`tests.reliability.fixtures.Fixtures`).
        code: the exit code due: 2 (a refusal) or 0 (it works).
        phrase: for a refusal, text the one ``error:`` line must contain (the full config key).
        setup: makes the case's own inputs in its folder: ``setup(case_dir, fixtures)``.
        check: for code 0, what the run made: ``check(case_dir, result)`` -> a problem, or None.
        creates: files and globs (relative to the case folder) a code-0 run may leave.
        replaces: files of the case folder the run may change (``overwrite=true``).
        slow: needs a trained model or runs real work (the slow test tier).
        run: for ``scenario`` cases, ``run(case_dir, fixtures)`` -> (outcome, detail).
        timeout: seconds before the run is killed (and judged a traceback).
    """

    id: str
    tool: str
    args: tuple[str, ...] = ()
    code: int = 2
    phrase: str = ""
    setup: Callable[[Path, Any], None] | None = None
    check: Callable[[Path, Result], str | None] | None = None
    creates: tuple[str, ...] = ()
    slow: bool = False
    run: Callable[[Path, Any], tuple[str, str]] | None = None
    timeout: float = 120.0
    replaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    case: str
    outcome: str
    detail: str
    seconds: float

    @property
    def good(self) -> bool:
        return self.outcome in GOOD


class ForkServer:
    """A long-lived :mod:`tests.reliability.forkserver` process."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.process = subprocess.Popen([sys.executable, "-m", "tests.reliability.forkserver"], cwd=ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert json.loads(self.process.stdout.readline()) == {"ready": True}

    def _send(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        return json.loads(self.process.stdout.readline())

    def run(self, module: str, argv: list[str], cwd: Path, env: dict[str, str], out: Path, err: Path,
            timeout: float, background: bool = False) -> tuple[int, bool] | int:
        """Run to the end: (exit code, timed out); ``background``: start and return the process id."""
        reply = self._send({"module": module, "argv": argv, "cwd": str(cwd), "env": env, "stdout": str(out),
                            "stderr": str(err), "timeout": timeout, "background": background})
        return reply["pid"] if background else (reply["code"], reply["timed_out"])

    def wait(self, pid: int, timeout: float) -> tuple[int, bool]:
        reply = self._send({"wait": pid, "timeout": timeout})
        return reply["code"], reply["timed_out"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


@dataclass
class Running:
    """A command started in the background (:func:`start_command`)."""

    pid: int
    out: Path
    err: Path
    started: float
    server: ForkServer | None = None
    popen: subprocess.Popen | None = None

    def wait(self, timeout: float = 600.0) -> Result:
        if self.server is not None:
            code, timed_out = self.server.wait(self.pid, timeout)
        else:
            try:
                code, timed_out = self.popen.wait(timeout), False
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, 9)
                code, timed_out = self.popen.wait(), True
        return Result(code, self.out.read_text(errors="replace"), self.err.read_text(errors="replace"),
                      time.monotonic() - self.started, timed_out)


def start_command(tool: str, argv: list[str], cwd: Path, server: ForkServer | None = None,
                  env: dict[str, str] | None = None, name: str = "") -> Running:
    """Start ``python -m readlit.<tool> argv`` in ``cwd`` without waiting; output in ``cwd/.stdout<name>``."""
    env = {"HF_HUB_OFFLINE": "1", **(env or {})}
    out, err = cwd / f".stdout{name}", cwd / f".stderr{name}"
    start = time.monotonic()
    if server is not None:
        pid = server.run(MODULES[tool], argv, cwd, env, out, err, 0, background=True)
        return Running(pid, out, err, start, server=server)
    with open(out, "w") as stdout, open(err, "w") as stderr:
        popen = subprocess.Popen([sys.executable, "-m", MODULES[tool], *argv], cwd=cwd, stdout=stdout,
                                 stderr=stderr, env={**os.environ, **env}, start_new_session=True)
    return Running(popen.pid, out, err, start, popen=popen)


def run_command(tool: str, argv: list[str], cwd: Path, timeout: float = 300.0, server: ForkServer | None = None,
                env: dict[str, str] | None = None) -> Result:
    """Run ``python -m readlit.<tool> argv`` in ``cwd`` to the end (forked from ``server`` when given)."""
    running = start_command(tool, argv, cwd, server, env)
    result = running.wait(timeout)
    running.out.unlink()
    running.err.unlink()
    return result


def snapshot(paths: list[Path]) -> dict[str, str]:
    """Content hash of every file under ``paths`` (files or folders), by path."""
    hashes = {}
    for path in paths:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() \
            else []
        for file in files:
            digest = hashlib.sha1()
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            hashes[str(file)] = digest.hexdigest()
    return hashes


def _named_paths(argv: list[str], roots: list[Path]) -> list[Path]:
    """The existing files and folders the command line names that lie under ``roots`` (the inputs to guard)."""
    named = []
    for arg in argv:
        value = arg.split("=", 1)[-1]
        for part in value.strip("[]'\"").split(","):
            path = Path(part.strip("'\""))
            if path.is_absolute() and path.exists() and any(path.is_relative_to(root) for root in roots):
                named.append(path)
    return named


_PLACEHOLDER = re.compile(r"\{(case|fx\.\w+)\}")


def fill(args: tuple[str, ...], case_dir: Path, fixtures: Any) -> list[str]:
    """The command line with ``{case}`` and ``{fx.NAME}`` filled in (other braces are Hydra's)."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        return str(case_dir) if name == "case" else str(getattr(fixtures, name[3:]))
    return [_PLACEHOLDER.sub(value, arg) for arg in args]


def judge(case: Case, result: Result, case_dir: Path, before: dict[str, str], after: dict[str, str],
          left: list[str]) -> tuple[str, str]:
    """(outcome, detail) of one finished run."""
    changed = sorted(path for path in before if after.get(path) != before[path])
    if changed:
        return "data_lost", f"changed or removed: {', '.join(Path(p).name for p in changed[:3])}"
    tail = " | ".join(result.stderr.strip().splitlines()[-2:])[-300:]
    if result.timed_out:
        return "traceback", f"timed out after {result.seconds:.0f} s"
    if "Traceback (most recent call last)" in result.stderr or result.code not in (0, 2):
        return "traceback", f"exit {result.code}: {tail}"
    if case.code == 2:
        if result.code == 0:
            return "silent_wrong", "exit 0 where a refusal was due"
        lines = result.error_lines
        if len(lines) != 1:
            return "defect", f"{len(lines)} error lines: {tail}"
        if case.phrase not in lines[0]:
            return "defect", f"message lacks {case.phrase!r}: {lines[0][:300]}"
        if left:
            return "defect", f"left behind: {', '.join(left[:3])}"
        return "refused", lines[0][:300]
    if result.code == 2:
        return "defect", f"a valid input refused: {tail}"
    problem = case.check(case_dir, result) if case.check else None
    if problem:
        return "silent_wrong", problem
    return "ok", f"{result.seconds:.1f} s"


def leftovers(case_dir: Path, existing: set[str], creates: tuple[str, ...]) -> list[str]:
    """What the run made under ``case_dir`` that the case does not allow (``creates``: globs of paths or folders)."""
    # Files only: an empty folder (logs/<task>/runs once the refused run's folder is gone) holds nothing.
    made = [p for p in case_dir.rglob("*") if str(p) not in existing and not p.name.startswith((".stdout", ".stderr"))
            and not p.is_dir()]
    left = []
    for path in sorted(made):
        relative = path.relative_to(case_dir)
        if not any(fnmatch(str(part), pattern) for part in (relative, *relative.parents) for pattern in creates):
            left.append(str(relative))
    return left


def run_case(case: Case, case_dir: Path, fixtures: Any, server: ForkServer | None = None) -> Verdict:
    """Set up, run and judge one case in ``case_dir`` (created empty)."""
    case_dir.mkdir(parents=True, exist_ok=True)
    if case.setup is not None:
        case.setup(case_dir, fixtures)
    start = time.monotonic()
    if case.tool == "scenario":
        outcome, detail = case.run(case_dir, fixtures)
        return Verdict(case.id, outcome, detail, time.monotonic() - start)
    argv = fill(case.args, case_dir, fixtures)
    guarded = [case_dir, *_named_paths(argv, [fixtures.root])]
    before = snapshot(guarded)
    existing = {str(p) for p in case_dir.rglob("*")}
    result = run_command(case.tool, argv, case_dir, case.timeout, server)
    after = snapshot(guarded)
    # Files a run may add to the case folder are judged by leftovers(); only what existed before is guarded.
    after = {path: digest for path, digest in after.items() if path in before}
    for name in case.replaces:
        before.pop(str(case_dir / name), None)
    outcome, detail = judge(case, result, case_dir, before, after, leftovers(case_dir, existing, case.creates))
    return Verdict(case.id, outcome, detail, time.monotonic() - start)


def counts(verdicts: list[Verdict]) -> dict[str, int]:
    """How many verdicts fell in each outcome, worst first."""
    return {outcome: sum(v.outcome == outcome for v in verdicts) for outcome in OUTCOMES}
