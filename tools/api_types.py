"""TypeScript types of the HTTP API, written by openapi-typescript (gateway/web's dev
dependency) from the OpenAPI document the gateway app builds in-process: no server runs.
The file is committed, in the browser module beside the code that reads /api/v1/config.

    tools/api_types.py          write it (make api-types)
    tools/api_types.py --check  fail when it is not what the app describes (make api-types-check)
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from photosearch_gateway.app import create_app
from photosearch_gateway.config import GatewaySettings

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "gateway" / "web" / "node_modules" / ".bin" / "openapi-typescript"
TYPES = ROOT / "gateway" / "photosearch_gateway" / "static" / "fingerprint" / "api.d.ts"
HEADER = "// Written by `make api-types` (tools/api_types.py) from the gateway's /openapi.json.\n"


def openapi_document() -> dict[str, Any]:
    """What /openapi.json answers (settings do not change it)."""
    return create_app(GatewaySettings()).openapi()


def typescript(document: dict[str, Any]) -> str:
    if not GENERATOR.exists():
        raise SystemExit(f"{GENERATOR.relative_to(ROOT)} is missing: run `make install`")
    with tempfile.TemporaryDirectory(prefix="api-types-") as folder:
        source, target = Path(folder) / "openapi.json", Path(folder) / "api.d.ts"
        source.write_text(json.dumps(document, indent=2) + "\n")
        # In the temporary folder, so that no redocly.yaml of the checkout is read.
        done = subprocess.run(
            [str(GENERATOR), str(source), "--output", str(target)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise SystemExit(f"openapi-typescript failed:\n{done.stderr or done.stdout}")
        return HEADER + target.read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    wanted = typescript(openapi_document())
    where = TYPES.relative_to(ROOT)
    if args.check:
        if not TYPES.exists() or TYPES.read_text() != wanted:
            sys.stderr.write(f"{where} is stale: run `make api-types` and commit it\n")
            return 1
        return 0
    TYPES.write_text(wanted)
    sys.stdout.write(f"wrote {where}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
