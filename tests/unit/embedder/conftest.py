from pathlib import Path

import pytest

from photosearch.common.model_files import ModelFiles
from tests.unit.embedder.models_for_tests import exported_tiny, save_tiny_dinov2


@pytest.fixture(scope="session")
def embedder_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp() / "embedder-models"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(embedder_models: Path) -> Path:
    return save_tiny_dinov2(embedder_models / "tiny-dinov2")


@pytest.fixture(scope="session")
def tiny_model(embedder_models: Path) -> ModelFiles:
    return exported_tiny(embedder_models)
