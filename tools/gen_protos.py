"""Generate Python code (+ mypy stubs) for every .proto under protos/ into the
shared package, so that `import photosearch.catalog.v1.catalog_pb2` works everywhere."""

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "libs" / "common" / "src"
PACKAGES = ["catalog", "embedder", "search", "fallback", "events"]


def main() -> int:
    for name in PACKAGES:  # start clean so deleted protos leave no stale code
        target = OUT / "photosearch" / name
        if target.exists():
            shutil.rmtree(target)
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    bin_dir = Path(sys.executable).parent  # the mypy plugins live beside this interpreter
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{include}",
            f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={OUT}",
            f"--mypy_out={OUT}",
            f"--grpc_python_out={OUT}",
            f"--mypy_grpc_out={OUT}",
            *files,
        ]
    )
    if code != 0:
        return int(code)
    for name in PACKAGES:
        for folder in (OUT / "photosearch" / name, OUT / "photosearch" / name / "v1"):
            (folder / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
