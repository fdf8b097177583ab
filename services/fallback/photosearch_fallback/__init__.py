"""photosearch fallback service."""
