"""The model loads on first work and leaves memory when idle, and the memory really
goes back to the operating system."""

import asyncio
import json
import subprocess
import sys

import numpy as np
from structlog.testing import capture_logs

from photosearch.common.model_files import ModelFiles
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.preprocess import PreprocessSpec
from photosearch_embedder.service import Embedder
from tests.support.embedder_models import cosine, photo


def pixels(files: ModelFiles, n: int = 2) -> np.ndarray:
    spec = PreprocessSpec.from_json(files.preprocess())
    return (
        np.random.default_rng(0)
        .normal(size=(n, 3, spec.crop_size, spec.crop_size))
        .astype(np.float32)
    )


async def test_loads_on_first_work_and_with_no_grace_unloads_when_the_queue_drains(
    tiny_model: ModelFiles,
) -> None:
    manager = ModelManager(tiny_model, idle_grace=0)
    assert not manager.loaded
    vectors = await manager.encode(pixels(tiny_model, 5))
    assert vectors.shape == (5, 48) and manager.loaded
    assert not await manager.maybe_unload()  # idle, but the queue was not seen empty
    assert manager.loaded
    assert await manager.maybe_unload(queue_drained=True)
    assert not manager.loaded
    assert np.allclose(await manager.encode(pixels(tiny_model, 5)), vectors, atol=1e-6)
    await manager.close()


async def test_unloads_after_the_idle_grace(tiny_model: ModelFiles) -> None:
    manager = ModelManager(tiny_model, idle_grace=0.2)
    manager.start()
    await manager.encode(pixels(tiny_model))
    assert not await manager.maybe_unload(queue_drained=True)  # used just now
    for _ in range(200):
        if not manager.loaded:
            break
        await asyncio.sleep(0.05)
    assert not manager.loaded
    await manager.close()


async def test_cuda_without_a_gpu_runs_on_cpu_with_a_warning(tiny_model: ModelFiles) -> None:
    with capture_logs() as logs:
        manager = ModelManager(tiny_model, device="cuda")
    assert manager.device == "cpu"
    assert any(e["event"] == "device.cuda_unavailable" for e in logs)
    await manager.close()


async def test_batches_larger_than_the_batch_size_are_chunked_with_equal_results(
    tiny_model: ModelFiles,
) -> None:
    embedder = Embedder(ModelManager(tiny_model, batch_size=2))
    images = [photo("chelsea"), photo("coffee"), photo("astronaut"), b"junk"]
    results = await embedder.embed(images, ["mirror"])
    assert [sorted(r.vectors) for r in results[:3]] == [["global", "mirror"]] * 3
    assert results[3].error is not None and "not a supported image" in str(results[3].error)
    alone = (await embedder.embed_photo(images[1], [])).vectors
    assert cosine(np.array(alone["global"]), np.array(results[1].vectors["global"])) > 0.99999
    await embedder.manager.close()


RSS_PROBE = """
import asyncio, json, sys
import numpy as np, psutil
from pathlib import Path
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.resolve import read_export

async def main():
    rss = lambda: psutil.Process().memory_info().rss
    manager = ModelManager(read_export(Path(sys.argv[1])), idle_grace=0, batch_size=32)
    batch = np.zeros((32, 3, 224, 224), np.float32)
    await manager.encode(batch[:1])
    await manager.maybe_unload(queue_drained=True)  # libraries warmed up: a fair baseline
    before = rss()
    await manager.encode(batch)
    loaded = rss()
    await manager.maybe_unload(queue_drained=True)
    print(json.dumps({"before": before, "loaded": loaded, "unloaded": rss()}))

asyncio.run(main())
"""


def test_unloading_gives_the_memory_back_to_the_os(tiny_model: ModelFiles) -> None:
    out = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(tiny_model.directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rss = json.loads(out.stdout.strip().splitlines()[-1])
    grown = rss["loaded"] - rss["before"]
    assert grown > 40e6, rss  # the model and its working memory
    assert rss["unloaded"] - rss["before"] < 0.25 * grown, rss
