"""Fixtures shared by every test: real PostgreSQL+pgvector and real NATS
JetStream on free ports in temp dirs, started once per session."""

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from photosearch_devstack.nats_server import NatsServer
from photosearch_devstack.postgres import EmbeddedPostgres

_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data").start()
    yield server
    server.stop(mode="immediate")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    store = tmp_path_factory.mktemp("nats")
    server = NatsServer(store / "js", log_file=store / "nats.log").start()
    yield server
    server.stop()


@pytest.fixture
def database_url(postgres: EmbeddedPostgres) -> str:
    """A new, empty database for this test."""
    return postgres.create_database(f"test_{next(_database_numbers)}")


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
