"""Command-line clients of a running catalog (imports, the demo catalog). They talk to
it over gRPC only; nothing of the server imports them, and their extra dependencies
come with `pip install 'photosearch-catalog[cli]'`."""
