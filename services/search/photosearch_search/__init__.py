"""photosearch search service."""
