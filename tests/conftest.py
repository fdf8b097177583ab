"""Fixtures shared by every test: real PostgreSQL+pgvector and real NATS
JetStream on free ports in temp dirs, started once per session; the embedder's tiny
test models (tests/support/embedder_models.py), made once per session when asked for."""

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from photosearch.common.model_files import ModelFiles
from photosearch_devstack.nats_server import NatsServer
from photosearch_devstack.postgres import EmbeddedPostgres
from tests.support.embedder_models import exported_tiny, models_root, save_tiny_dinov2

_database_numbers = itertools.count()
# Embedders started by tests run the export's graph in onnxruntime as exported, untimed:
# timing the runtimes costs seconds per start. The tests of the runtime choice, and the
# mesh the end-to-end tests start (tests/support/mesh.py), use EMBED_RUNTIME=auto.
os.environ.setdefault("EMBED_RUNTIME", "onnxruntime")


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


@pytest.fixture(scope="session")
def embedder_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_root(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_checkpoint(embedder_models: Path) -> Path:
    return save_tiny_dinov2(embedder_models / "tiny-dinov2")


@pytest.fixture(scope="session")
def tiny_model(embedder_models: Path) -> ModelFiles:
    return exported_tiny(embedder_models)
