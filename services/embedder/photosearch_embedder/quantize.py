"""OpenVINO's static int8 of one ONNX graph, by NNCF post-training quantisation, in a
process of its own:

    python -m photosearch_embedder.quantize SOURCE.onnx OUT.xml CALIBRATION.npz OVERFLOW_FIX

engines.py runs it as a child because nncf imports PyTorch whenever it is installed
(the image has it for the export), which would stay in the serving process for good
(~230 MiB); and so nncf's progress bars stay out of the service's log. The calibration
inputs arrive as arrays arr_0, arr_1, ... of one .npz; OVERFLOW_FIX is NNCF's OverflowFix
value (engines.int8_overflow_fix chooses it for the CPU)."""

import sys
from pathlib import Path
from typing import Any

import numpy as np

from photosearch_embedder.engines import import_nncf


def quantize(source: Path, out: Path, calibration: list[np.ndarray], overflow_fix: str) -> None:
    import openvino as ov

    nncf = import_nncf()
    model = ov.Core().read_model(str(source))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(calibration),
        model_type=nncf.ModelType.TRANSFORMER if _is_transformer(model) else None,
        subset_size=len(calibration),
        advanced_parameters=nncf.AdvancedQuantizationParameters(
            overflow_fix=nncf.OverflowFix(overflow_fix)
        ),
    )
    ov.save_model(quantized, str(out))


def _is_transformer(model: Any) -> bool:
    """ViTs (DINOv2) quantise best with NNCF's transformer preset (it leaves softmax
    and layer norms in float); convolutional networks with the default."""
    return any(op.get_type_name() == "Softmax" for op in model.get_ops())


def main(argv: list[str] | None = None) -> None:
    source, out, calibration, overflow_fix = argv or sys.argv[1:]
    with np.load(calibration) as arrays:
        inputs = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    quantize(Path(source), Path(out), inputs, overflow_fix)


if __name__ == "__main__":
    main()
