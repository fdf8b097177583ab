"""Entry point: python -m photosearch_catalog"""

from photosearch.common.entrypoint import main
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.server import build_server

if __name__ == "__main__":
    main(build_server, CatalogSettings, "catalog")
