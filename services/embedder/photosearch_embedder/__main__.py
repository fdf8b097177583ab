"""Entry point: python -m photosearch_embedder"""

from photosearch.common.entrypoint import main
from photosearch_embedder.config import EmbedderSettings
from photosearch_embedder.server import build_server

if __name__ == "__main__":
    main(build_server, EmbedderSettings, "embedder")
