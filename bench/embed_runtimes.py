"""The model alone, no decoding: how fast each CPU runtime runs DINOv2-small (random weights,
the real architecture) on batches of 16 ready tensors, side by side in one run. It answers
"what is the ceiling on this machine?" for the embedder's targets (docs/benchmarks/embedder.md).

    .venv/bin/python bench/embed_runtimes.py [--seconds 8] [--rounds 2]

Runtimes: PyTorch eager fp32 (SDPA attention), PyTorch eager with bfloat16 autocast, the
embedder's own ONNX fp32 and int8 exports in onnxruntime (spinning threads off, as the
service runs them, and on), and int8 after onnxruntime's transformer optimizer
(`model_type="vit"`) instead of `quant_pre_process`.
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from embed import WORK, dinov2_small_checkpoint, export  # noqa: E402

BATCH = 16


def rate(run: Callable[[np.ndarray], object], pixels: np.ndarray, seconds: float) -> float:
    run(pixels)  # warm up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        run(pixels)
        done += len(pixels)
    return done / (time.perf_counter() - started)


def torch_runner(bf16: bool) -> Callable[[np.ndarray], object]:
    import torch

    from photosearch_embedder.export.weights import load_dinov2

    torch.set_num_threads(os.cpu_count() or 1)
    net = load_dinov2(str(dinov2_small_checkpoint()), eager_attention=False)

    def run(pixels: np.ndarray) -> object:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return net(pixel_values=torch.from_numpy(pixels)).pooler_output

    return run


def ort_runner(path: Path, spinning: bool) -> Callable[[np.ndarray], object]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda pixels: session.run(None, {name: pixels})


def vit_optimized_int8(fp32: Path, folder: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(fp32), model_type="vit", num_heads=6, hidden_size=384)
    print(f"  optimizer fused: {optimized.get_fused_operator_statistics()}", flush=True)
    fused, int8 = folder / "vit_fp32.onnx", folder / "vit_int8.onnx"
    optimized.save_model_to_file(str(fused))
    quantize_dynamic(str(fused), str(int8), weight_type=QuantType.QInt8)
    return int8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per runtime per round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    fp32, int8 = export("dinov2-small", "none"), export("dinov2-small", "int8")
    pixels = np.random.default_rng(0).normal(size=(BATCH, 3, 224, 224)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        runners = {
            "PyTorch eager fp32": torch_runner(bf16=False),
            "PyTorch eager bf16 autocast": torch_runner(bf16=True),
            "onnxruntime fp32 (no spinning)": ort_runner(fp32.onnx_path, spinning=False),
            "onnxruntime int8 (no spinning)": ort_runner(int8.onnx_path, spinning=False),
            "onnxruntime int8 (spinning)": ort_runner(int8.onnx_path, spinning=True),
            "onnxruntime int8, vit-optimized": ort_runner(
                vit_optimized_int8(fp32.onnx_path, Path(tmp)), spinning=False
            ),
        }
        results: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.rounds):  # interleaved: a busy moment hurts every runtime alike
            for name, run in runners.items():
                results[name].append(rate(run, pixels, args.seconds))
    print(f"\nDINOv2-small, batches of {BATCH}, load average {os.getloadavg()[0]:.1f}")
    print("| runtime | img/s (best) | rounds |\n|---|---:|---|")
    for name, rates in results.items():
        print(f"| {name} | {max(rates):.1f} | {', '.join(f'{r:.1f}' for r in rates)} |")


if __name__ == "__main__":
    main()
