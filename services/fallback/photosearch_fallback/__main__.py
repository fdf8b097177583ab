"""Entry point: python -m photosearch_fallback"""

from photosearch.common.entrypoint import main
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.server import build_server

if __name__ == "__main__":
    main(build_server, FallbackSettings, "fallback")
