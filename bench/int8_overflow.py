"""OpenVINO int8 with NNCF's two overflow fixes side by side, on this CPU: how far each
drifts from fp32 (the lowest cosine on the embedder's calibration photos, the rule that
admits an engine: >= 0.998) and how fast each runs, for every graph of each model.

    .venv/bin/python bench/int8_overflow.py [--models tiny-dinov2,efficientnet-lite0]

`first_layer_only` is NNCF's default; `enable` gives every layer's weights half the 8-bit
range, for CPUs without VNNI whose 8-bit kernels saturate (engines.int8_overflow_fix picks
it there). Models: the tests' tiny DINOv2 (random weights), DINOv2-small (random weights,
the real architecture), EfficientNet-Lite0 (real ImageNet weights).
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from embed import export  # noqa: E402

from photosearch_embedder import engines  # noqa: E402
from photosearch_embedder.engines import OPENVINO, Engine  # noqa: E402
from photosearch_embedder.runtime_choice import _reference  # noqa: E402
from photosearch_embedder.runtime_trials import FINGERPRINT, LOCAL, GraphBench, _rate  # noqa: E402

FIXES = ("first_layer_only", "enable")


def exported(model: str, root: Path) -> Any:
    if model == "tiny-dinov2":
        from tests.support.embedder_models import exported_tiny

        return exported_tiny(root)
    return export(model, "none")


def graphs(files: Any) -> list[str]:
    return [FINGERPRINT, LOCAL] if files.preprocess().get("local") else [FINGERPRINT]


def measure(model: str, root: Path, seconds: float) -> list[dict[str, Any]]:
    files = exported(model, root / model)
    rows = []
    for graph in graphs(files):
        reference = _reference(files, graph)  # the fp32 graph in onnxruntime
        name = reference.graph
        bench = GraphBench(
            files, graph, reference, device="cpu", threads=0, batch_size=16, cache=root / model
        )
        for fix in FIXES:
            engines.int8_overflow_fix = lambda fix=fix: fix  # type: ignore[assignment]
            engine = Engine(OPENVINO, "int8", name)
            checked = bench.check(engine)  # the rule that admits an engine, not timed
            session = bench.session(engine)  # timed even where refused
            try:
                rate = _rate(session, bench.timed, bench.per_call, seconds)
            finally:
                session.close()
            row = {
                "model": model,
                "graph": graph,
                "overflow_fix": fix,
                "lowest_cosine": checked.min_cosine,
                "admitted": not checked.problem,
                "per_second": round(rate, 1),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny-dinov2,efficientnet-lite0")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed per engine")
    args = parser.parse_args()
    print(json.dumps({"cpu_overflow_fix": engines.int8_overflow_fix(), "load": os.getloadavg()}))
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        for model in args.models.split(","):
            measure(model, Path(tmp), args.seconds)
    print(json.dumps({"load_after": os.getloadavg()}))


if __name__ == "__main__":
    main()
