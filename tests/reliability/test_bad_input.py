"""Issue #19's table through the real command lines: every kind refused cleanly or handled right.

One test per kind (:mod:`tests.reliability.cases`): a refusal must be exit 2 with one ``error:`` line naming the
config key, nothing left behind and no input changed; an odd but valid input must work and make the right thing.
Kinds that refuse before loading anything run in the default tier through one fork server (an interpreter start
per kind would cost 15 s); the others (training, sampling a video, kill -9, runs started together) are slow.
"""

from __future__ import annotations

import pytest

from tests.reliability.cases import CASES
from tests.reliability.fixtures import Fixtures
from tests.reliability.runner import ForkServer, run_case


@pytest.fixture(scope="session")
def server():
    started = ForkServer()
    yield started
    started.close()


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory, server):
    return Fixtures(tmp_path_factory.mktemp("reliability_fixtures"), server)


def _param(case):
    return pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.slow else [])


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_kind(case, fixtures, server, tmp_path):
    verdict = run_case(case, tmp_path / case.id, fixtures, server)
    assert verdict.good, f"{verdict.outcome}: {verdict.detail}"
