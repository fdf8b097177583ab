"""Embedder throughput and latency: transformers eager vs ONNX fp32 vs ONNX int8 vs the
engine EMBED_RUNTIME=auto chooses on this host (OpenVINO included), end to end (JPEG
bytes -> decode -> preprocess -> model -> vector) on 640-px and 12-MP JPEGs, with
batch-1 latency and each configuration's peak RSS (each runs in its own process).

DINOv2-small is measured with random weights in the real architecture (no download:
speed does not depend on the weight values); EfficientNet-Lite0 with its real weights,
which also gives int8's fidelity on real photos.

    .venv/bin/python bench/embed.py [--images 64] [--large-images 12] [--rounds 2]
"""

import argparse
import asyncio
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".data" / "bench-embed"
MODELS = ("dinov2-small", "efficientnet-lite0")
# "auto": what the service serves with by default (EMBED_RUNTIME=auto): the fastest
# engine whose fingerprints match fp32, timed on this host (runtime_choice.py).
# "torch": EMBED_RUNTIME=torch, PyTorch's own precisions only (fp32 or bf16 autocast).
RUNTIMES = ("eager", "onnx-fp32", "onnx-int8", "auto", "torch")
PIPELINE = int(os.environ.get("BENCH_PIPELINE", "2"))  # = EMBED_PIPELINE_BATCHES default
SETS = {"640px": (640, 480), "12MP": (4000, 3000)}


def make_images(count: int, size: tuple[int, int]) -> list[bytes]:
    """Distinct photo-like JPEGs cut from scikit-image's sample photos."""
    import skimage.data

    sources = [skimage.data.chelsea(), skimage.data.astronaut(), skimage.data.coffee()]
    images = []
    for i in range(count):
        image = Image.fromarray(sources[i % 3])
        w, h = image.size
        image = image.crop((i % 11, i % 7, w - i % 5, h - i % 3)).resize(size, Image.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def dinov2_small_checkpoint() -> Path:
    """The DINOv2-small architecture (22 M parameters) with random weights."""
    directory = WORK / "dinov2-small-random"
    if not (directory / "config.json").exists():
        import torch
        from transformers import Dinov2Config, Dinov2Model

        torch.manual_seed(0)
        config = Dinov2Config(
            hidden_size=384,
            num_hidden_layers=12,
            num_attention_heads=6,
            mlp_ratio=4,
            patch_size=14,
            image_size=518,
            layerscale_value=1.0,
            layer_norm_eps=1e-6,
            qkv_bias=True,
        )
        Dinov2Model(config).save_pretrained(directory)
    return directory


def spec_of(model: str) -> Any:
    from photosearch_embedder.models import spec_for

    if model == "dinov2-small":
        return spec_for(str(dinov2_small_checkpoint()), "bench/dinov2-small-random")
    return spec_for("efficientnet-lite0")


def export(model: str, quantization: str) -> Any:
    from photosearch_embedder.export import export_model

    return export_model(spec_of(model), WORK / f"cache-{quantization}", quantization)  # type: ignore[arg-type]


def eager_encoder(model: str) -> Any:
    """The PyTorch model as transformers (or geffnet) runs it, fp32, eager mode."""
    import torch

    from photosearch_embedder.export.weights import load_dinov2, load_efficientnet_lite0

    torch.set_num_threads(os.cpu_count() or 1)
    if model == "dinov2-small":
        net = load_dinov2(str(dinov2_small_checkpoint()), eager_attention=False)

        def run(pixels: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                out = net(pixel_values=torch.from_numpy(pixels)).pooler_output
                return torch.nn.functional.normalize(out, dim=-1).numpy()

        return run
    lite = load_efficientnet_lite0()

    def run_lite(pixels: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch.nn.functional.normalize(lite(torch.from_numpy(pixels)), dim=-1).numpy()

    return run_lite


async def measure(model: str, runtime: str, image_set: str, count: int) -> dict[str, Any]:
    """One configuration, in this process: the same decode path as the service."""
    from photosearch_embedder.manager import ModelManager
    from photosearch_embedder.runtime_choice import ChoiceRequest, choose
    from photosearch_embedder.service import Embedder

    images = make_images(count, SETS[image_set])
    quantization = "int8" if runtime in ("onnx-int8", "auto", "torch") else "none"
    files = export(model, quantization)
    choice = None
    if runtime in ("auto", "torch"):  # timed once per host, then read from the cache
        choice = choose(files, ChoiceRequest(runtime, probe_seconds=3.0))  # type: ignore[arg-type]
    embedder = Embedder(ModelManager(files, batch_size=16, idle_grace=300, choice=choice))
    if runtime == "eager":
        run = eager_encoder(model)

        async def encode(pixels: np.ndarray) -> np.ndarray:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(embedder.manager._thread, run, pixels)

        embedder.manager.encode = encode  # type: ignore[method-assign]
    await embedder.embed(images[:2], [])  # load + warm up
    latencies = []
    for data in images[:8]:
        started = time.perf_counter()
        await embedder.embed([data], [])
        latencies.append(time.perf_counter() - started)
    # As the queue worker does: batches of 16, the next decoding while the model runs.
    gate = asyncio.Semaphore(PIPELINE)

    async def batch(chunk: list[bytes]) -> None:
        async with gate:
            results = await embedder.embed(chunk, [])
            assert all(r.error is None for r in results)

    started = time.perf_counter()
    await asyncio.gather(*(batch(images[i : i + 16]) for i in range(0, len(images), 16)))
    elapsed = time.perf_counter() - started
    model_only = await model_only_rate(embedder, files, images[0])
    await embedder.manager.close()
    return {
        "model": model,
        "runtime": runtime,
        "engine": "pytorch eager" if runtime == "eager" else manager_engine(embedder),
        "images": image_set,
        "count": len(images),
        "images_per_s": round(len(images) / elapsed, 2),
        "model_only_images_per_s": model_only,
        "batch1_ms_median": round(statistics.median(latencies) * 1000, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        "load_1min": round(os.getloadavg()[0], 1),  # other work on the machine meanwhile
    }


def manager_engine(embedder: Any) -> str:
    return str(embedder.manager.choice.fingerprint.engine.name)


async def model_only_rate(embedder: Any, files: Any, image: bytes, seconds: float = 6) -> float:
    """The runtime alone on batches of 16 ready tensors (no decoding): the ceiling the
    end-to-end rate can approach."""
    from photosearch_embedder.preprocess import PreprocessSpec
    from photosearch_embedder.variants import parse_variants

    one = PreprocessSpec.from_json(files.preprocess()).tensors(image, parse_variants([]))
    pixels = np.concatenate([one] * 16)
    await embedder.manager.encode(pixels)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        await embedder.manager.encode(pixels)
        done += len(pixels)
    return round(done / (time.perf_counter() - started), 2)


def int8_fidelity(model: str) -> float:
    """Lowest cosine between int8 and fp32 fingerprints over a set of real photos."""
    import onnxruntime as ort

    from photosearch_embedder.preprocess import PreprocessSpec
    from photosearch_embedder.variants import parse_variants

    fp32, int8 = export(model, "none"), export(model, "int8")
    spec = PreprocessSpec.from_json(fp32.preprocess())
    pixels = np.concatenate(
        [spec.tensors(d, parse_variants([])) for d in make_images(24, (800, 600))]
    )

    def run(files: Any) -> np.ndarray:
        session = ort.InferenceSession(str(files.onnx_path), providers=["CPUExecutionProvider"])
        out: np.ndarray = session.run(["fingerprint"], {"pixel_values": pixels})[0]
        return out

    return round(float(np.min(np.sum(run(fp32) * run(int8), axis=1))), 5)


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="640-px JPEGs per run")
    parser.add_argument("--large-images", type=int, default=12, help="12-MP JPEGs per run")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sets", default="640px,12MP", help="image sets to run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per setting")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "embed.json")
    parser.add_argument("--one", nargs=4, metavar=("MODEL", "RUNTIME", "SET", "COUNT"))
    parser.add_argument("--fidelity", metavar="MODEL")
    args = parser.parse_args()
    if args.one:
        model, runtime, image_set, count = args.one
        print(json.dumps(asyncio.run(measure(model, runtime, image_set, int(count)))))
        return
    if args.fidelity:
        print(
            json.dumps(
                {"model": args.fidelity, "int8_vs_fp32_min_cosine": int8_fidelity(args.fidelity)}
            )
        )
        return
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    fidelity = {}
    for model in args.models.split(","):
        print(f"exporting {model} (fp32 and int8; cached in {WORK}) ...", flush=True)
        fidelity[model] = run_child("--fidelity", model)["int8_vs_fp32_min_cosine"]
        counts = {"640px": args.images, "12MP": args.large_images}
        for image_set in args.sets.split(","):
            count = counts[image_set]
            # Rounds interleave the runtimes, so a busy moment hurts all of them alike;
            # each keeps its best round.
            runs = [
                run_child("--one", model, runtime, image_set, str(count))
                for _ in range(args.rounds)
                for runtime in RUNTIMES
            ]
            for runtime in RUNTIMES:
                mine = [r for r in runs if r["runtime"] == runtime]
                row = {
                    **mine[0],
                    "images_per_s": max(r["images_per_s"] for r in mine),
                    "model_only_images_per_s": max(r["model_only_images_per_s"] for r in mine),
                    "batch1_ms_median": min(r["batch1_ms_median"] for r in mine),
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
                    "rounds": [r["images_per_s"] for r in mine],
                }
                rows.append(row)
                print(
                    f"{model:18} {runtime:10} {row['engine']:17} {image_set:6} "
                    f"{row['images_per_s']:7.1f} img/s  "
                    f"(model alone {row['model_only_images_per_s']:5.1f})  "
                    f"batch-1 {row['batch1_ms_median']:7.1f} ms  "
                    f"peak RSS {row['peak_rss_mb']:5.0f} MB  (rounds: {row['rounds']}, "
                    f"load {[r['load_1min'] for r in mine]})",
                    flush=True,
                )
    for model in args.models.split(","):
        speed = {
            (r["runtime"], r["images"]): r["images_per_s"] for r in rows if r["model"] == model
        }
        for image_set in SETS:
            if ("eager", image_set) in speed:
                for runtime in ("onnx-int8", "auto"):
                    ratio = speed[(runtime, image_set)] / speed[("eager", image_set)]
                    print(f"{model} {image_set}: {runtime} / eager = {ratio:.2f}x")
        print(
            f"{model}: int8 vs fp32 fingerprints, lowest cosine over 24 photos = {fidelity[model]}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"rows": rows, "int8_fidelity": fidelity, "cpus": os.cpu_count()}, indent=2)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
