"""photosearch embedder service."""
