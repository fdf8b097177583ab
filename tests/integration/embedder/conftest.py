"""The tiny test models as session fixtures (made by tests/support/embedder_models.py;
tests/unit/embedder defines the same fixtures the same way)."""

from pathlib import Path

import pytest

from photosearch.common.model_files import ModelFiles
from tests.support.embedder_models import exported_tiny, models_root, save_tiny_dinov2


@pytest.fixture(scope="session")
def embedder_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_root(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_checkpoint(embedder_models: Path) -> Path:
    return save_tiny_dinov2(embedder_models / "tiny-dinov2")


@pytest.fixture(scope="session")
def tiny_model(embedder_models: Path) -> ModelFiles:
    return exported_tiny(embedder_models)
