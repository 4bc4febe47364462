"""Run readlit's command-line entry points many times at the cost of one interpreter start.

The server imports every entry point once, then forks a child per request. The child is the CLI as a user runs
it: ``sys.argv`` is the command line, stdout and stderr go to files, an uncaught exception prints its traceback
and exits 1, ``SystemExit`` sets the exit code, and the child leads its own process group so that a timeout
kills its workers too. Starting ``python -m readlit.train`` costs 10-20 s of imports on a loaded 2-core machine;
a forked child starts in milliseconds with the same modules.

The server adopts orphans (a child subreaper, as CI runners and container inits are), so a worker that outlives
its killed run is reparented to the server, not to pid 1, whatever machine the tests run on; the server reaps them.

Protocol: one JSON request per line on stdin,
``{"module", "argv", "cwd", "env", "stdout", "stderr", "timeout", "script", "background"}``, and one JSON reply per
line, ``{"code", "seconds", "timed_out"}``. ``script``: call ``module.main()`` as a console script does, instead of
running the module as ``python -m`` does; ``background``: reply ``{"pid"}`` at once, and answer a later
``{"wait": pid, "timeout"}`` with the exit code.
"""

import atexit
import ctypes
import ctypes.util
import importlib
import importlib.util
import json
import os
import runpy
import signal
import sys
import time
import traceback

_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
MODULES = ("readlit.train", "readlit.generate", "readlit.evaluate", "readlit.preprocess", "readlit.bench",
           "readlit.data.synthetic", "readlit.checkpoint", "readlit.audio")


def _child(request: dict) -> None:
    """Become the CLI process of ``request``; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        os.chdir(request["cwd"])
        os.environ.update(request.get("env") or {})
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        sys.stdout, sys.stderr = os.fdopen(1, "w", buffering=1), os.fdopen(2, "w", buffering=1)
        name = request["module"]
        try:
            if request.get("script"):  # a console script: import the module, call its main()
                module = importlib.import_module(name)
                sys.argv = [module.__file__, *request["argv"]]
                returned = module.main()
                code = returned if isinstance(returned, int) else 0
            else:  # python -m: the module runs as __main__ (not under its own name, as python -m has it)
                path = importlib.util.find_spec(name).origin
                sys.modules.pop(name, None)
                sys.argv = [path, *request["argv"]]
                runpy.run_module(name, run_name="__main__", alter_sys=True)
                code = 0
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - the interpreter's own behaviour: print the traceback, exit 1
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status), True
        time.sleep(0.02)


def _adopt_orphans() -> None:
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except (OSError, AttributeError):
        pass


def _reap_adopted(started: dict[int, float]) -> None:
    """Reap finished children the server did not fork itself (adopted orphans), leaving its own to ``_wait``."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in started:
            return
        os.waitpid(info.si_pid, 0)


def serve() -> None:
    """Answer requests until stdin closes."""
    _adopt_orphans()
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr  # nothing the imports print may reach the reply stream
    for name in MODULES:
        importlib.import_module(name)
    replies.write(json.dumps({"ready": True}) + "\n")
    started: dict[int, float] = {}
    for line in sys.stdin:
        _reap_adopted(started)
        request = json.loads(line)
        if "wait" in request:
            pid = request["wait"]
            code, timed_out = _wait(pid, request["timeout"])
            seconds = time.monotonic() - started.pop(pid)
            replies.write(json.dumps({"code": code, "seconds": seconds, "timed_out": timed_out}) + "\n")
            continue
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            replies.close()
            _child(request)
        started[pid] = time.monotonic()
        if request.get("background"):
            replies.write(json.dumps({"pid": pid}) + "\n")
            continue
        code, timed_out = _wait(pid, request["timeout"])
        seconds = time.monotonic() - started.pop(pid)
        replies.write(json.dumps({"code": code, "seconds": seconds, "timed_out": timed_out}) + "\n")


if __name__ == "__main__":
    serve()
