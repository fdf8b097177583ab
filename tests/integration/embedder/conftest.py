from tests.unit.embedder.conftest import embedder_models, tiny_checkpoint, tiny_model

__all__ = ["embedder_models", "tiny_checkpoint", "tiny_model"]
