"""A live worker never drops out of the worker list while it is busy: embedding a stream of
jobs on a host whose cores are also taken by other processes, search's reading of the
heartbeat bucket (WorkerDirectory, real NATS) lists it in every sample."""

import asyncio
import sys
import time
from pathlib import Path

from photosearch.common.infra import Infra
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.server import build_server
from photosearch_search.workers import WorkerDirectory
from tests.integration.embedder.support import (
    eventually,
    export_for_this_test,
    publish_jobs,
    read_results,
    settings_for,
)
from tests.support.embedder import MemoryImageSource
from tests.support.embedder_models import photo
from tests.support.services import start_service

BURN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass"


async def test_a_busy_worker_on_a_loaded_host_stays_listed(
    nats_server, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    model = export_for_this_test(tiny_model, tmp_path)
    images = {f"p{i}": photo(("chelsea", "coffee", "astronaut")[i % 3], 900) for i in range(60)}
    settings = settings_for(
        nats_server.url,
        model,
        worker_id="worker-busy",
        # Five missed beats in a row drop it: a hung put did; a host this busy must not.
        heartbeat_interval_seconds=0.5,
        heartbeat_ttl_seconds=2.5,
    )

    async def build(s):
        return await build_server(s, MemoryImageSource(images))

    service = await start_service(build, settings)
    reader = Infra("search-test", nats_url=nats_server.url)
    await reader.start()
    directory = WorkerDirectory(reader, ttl=2.5)
    burners = [await asyncio.create_subprocess_exec(sys.executable, "-c", BURN) for _ in range(2)]
    try:
        await publish_jobs(reader.require_js(), model.model_id, [(i, f"item-{i}") for i in images])
        samples, missing = 0, []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            listed = [w.worker_id for w in await directory.online()]
            samples += 1
            if "worker-busy" not in listed:
                missing.append(round(deadline - time.monotonic(), 1))
            await asyncio.sleep(0.1)
        assert samples >= 20 and missing == [], f"missing in {len(missing)} of {samples} samples"

        async def all_done() -> bool:
            return len((await read_results(reader.require_js(), model.model_id))[0]) >= 60

        await eventually(all_done, 120)  # the load was real work, and it all got done
    finally:
        for burner in burners:
            burner.kill()
            await burner.wait()
        await reader.stop()
        await service.stop()
