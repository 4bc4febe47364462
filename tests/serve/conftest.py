"""Fixtures of the API and load tests: the tiny checkpoint, inputs, the app in-process."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from readlit.serve.app import create_app
from tests.serve.server import make_service, tiny_checkpoint, write_inputs


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return write_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture
def client(tiny_ckpt, tmp_path) -> Iterator[TestClient]:
    """The app in-process (one worker, one waiting job); ``client.service`` is its service."""
    service = make_service(tiny_ckpt, tmp_path, "queue=1", "sweep_seconds=0.2")
    with TestClient(create_app(service)) as test_client:
        test_client.service = service
        yield test_client
