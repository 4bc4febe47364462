"""A preprocessing pool worker does not outlive the run that started it (:func:`clip_job.die_with_parent`)."""

import multiprocessing
import os

import pytest

from readlit.data.preprocess.clip_job import die_with_parent


def _exit_code(parent: int) -> int:
    """Exit code of a spawned process (whose parent is this one) that calls ``die_with_parent(parent)``."""
    child = multiprocessing.get_context("spawn").Process(target=die_with_parent, args=(parent,))
    child.start()
    child.join(120)
    return child.exitcode


@pytest.mark.skipif(not hasattr(os, "getppid"), reason="POSIX parent ids")
def test_a_worker_whose_parent_is_alive_carries_on():
    assert _exit_code(os.getpid()) == 0


@pytest.mark.skipif(not hasattr(os, "getppid"), reason="POSIX parent ids")
def test_a_worker_handed_to_another_parent_exits_at_once():
    # As if the run died while the worker imported: the worker now has another parent than the run's pid.
    assert _exit_code(os.getpid() + 100_000) == 1
