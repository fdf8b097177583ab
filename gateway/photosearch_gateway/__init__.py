"""photosearch gateway: the HTTP API and web UI."""
