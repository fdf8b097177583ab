"""python -m photosearch_embedder.export (see cli.py)."""

import sys

from photosearch_embedder.export.cli import main

if __name__ == "__main__":
    sys.exit(main())
