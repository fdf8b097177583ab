"""One PyTorch engine's trial, in a process of its own:

    python -m photosearch_embedder.torch_trial REQUEST.json RESULT.json

runtime_trials.py runs every torch candidate here, so that checking and timing one does
not leave PyTorch (about 220 MiB before any model) in a serving process that then serves
with another runtime. REQUEST names the export, the graph, the fp32 reference, the engine
and the timing; RESULT gets the Trial."""

import json
import sys
from dataclasses import asdict
from pathlib import Path

from photosearch_embedder.engines import Engine
from photosearch_embedder.resolve import read_export
from photosearch_embedder.runtime_trials import GraphBench


def main(argv: list[str] | None = None) -> None:
    request_path, result_path = (Path(a) for a in (argv or sys.argv[1:]))
    request = json.loads(request_path.read_text())
    bench = GraphBench(
        read_export(Path(request["export"])),
        request["graph"],
        Engine(**request["reference"]),
        device=request["device"],
        threads=request["threads"],
        batch_size=request["batch_size"],
        cache=Path(request["cache"]) if request["cache"] else None,
        child=True,
    )
    trial = bench.trial(Engine(**request["engine"]), request["seconds"])
    result_path.write_text(json.dumps(asdict(trial)))


if __name__ == "__main__":
    main()
