"""The queue worker: pull embed jobs in batches from the shared durable consumer of
this model (photosearch.common.nats.pull_batches) and hand each batch to the job
handler (jobs.py: embed, publish, settle). Up to `pipeline` batches are in hand at
once, and the next one is fetched only when there is room for it."""

import asyncio
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from photosearch.common import subjects
from photosearch.common.logging import get_logger
from photosearch.common.nats import bind_pull, pull_batches
from photosearch_embedder.jobs import JobHandler
from photosearch_embedder.metrics import EmbedderMetrics
from photosearch_embedder.service import Embedder
from photosearch_embedder.source import ImageSource

log = get_logger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    worker_id: str
    batch_size: int = 16
    variants: tuple[str, ...] = ("global",)
    ack_wait: float = 60.0
    fetch_timeout: float = 2.0
    pipeline: int = 2


class EmbedWorker:
    def __init__(
        self,
        js: JetStreamContext,
        embedder: Embedder,
        source: ImageSource,
        options: WorkerOptions,
        metrics: EmbedderMetrics | None = None,
    ) -> None:
        self.js = js
        self.embedder = embedder
        self.options = options
        self.model_id = embedder.model_id
        self.consumer = subjects.embed_consumer_name(self.model_id)
        self.jobs = JobHandler(
            js,
            embedder,
            source,
            worker_id=options.worker_id,
            variants=options.variants,
            ack_wait=options.ack_wait,
            metrics=metrics or EmbedderMetrics(),
        )
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def processed(self) -> int:
        """Jobs this worker completed."""
        return self.jobs.processed

    async def start(self) -> None:
        self._psub = await bind_pull(
            self.js,
            subjects.EMBED_JOBS_STREAM,
            self.consumer,
            filter_subject=subjects.embed_job_subject(self.model_id),
            ack_wait=self.options.ack_wait,
        )
        self._task = asyncio.create_task(self._run(), name="embed-worker")
        log.info("worker.started", consumer=self.consumer, model_id=self.model_id)

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand (so its jobs are settled), then stop pulling."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:  # un-acked jobs go back to the queue after ack_wait
                log.warning("worker.stop_timeout", timeout_s=timeout)
            try:
                await self._psub.unsubscribe()
            except Exception as exc:
                log.debug("worker.unsubscribe_failed", error=str(exc))

    async def queue_depth(self) -> tuple[int, int]:
        """(jobs waiting, jobs handed out and not yet acked) for this model."""
        info = await self.js.consumer_info(subjects.EMBED_JOBS_STREAM, self.consumer)
        return int(info.num_pending or 0), int(info.num_ack_pending or 0)

    async def _run(self) -> None:
        # Up to `pipeline` batches at once: the next batch is fetched and decoded while
        # the model works on the current one.
        in_flight: set[asyncio.Task[None]] = set()
        try:
            await self._pull(in_flight)
        except asyncio.CancelledError:  # stop() ran out of patience: jobs go back to the queue
            for task in in_flight:
                task.cancel()
            raise

    async def _pull(self, in_flight: set[asyncio.Task[None]]) -> None:
        async def unload_when_drained() -> None:
            if not in_flight:  # nothing fetched and nothing in hand: the queue drained
                await self.embedder.manager.maybe_unload(queue_drained=True)

        batches = pull_batches(
            self._psub,
            self.options.batch_size,
            timeout=self.options.fetch_timeout,
            stopping=self._stopping,
            consumer=self.consumer,
            on_idle=unload_when_drained,
        )
        async for msgs in batches:
            task = asyncio.create_task(self._process_safely(msgs))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            # Room first, then the next fetch: no job is taken without a slot for it.
            await self._wait_for_slot(in_flight)
        if in_flight:
            await asyncio.gather(*in_flight)

    async def _wait_for_slot(self, in_flight: set[asyncio.Task[None]]) -> None:
        while len(in_flight) >= self.options.pipeline:  # done tasks leave by callback
            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)

    async def _process_safely(self, msgs: list[Msg]) -> None:
        try:
            await self.jobs.process(msgs)
        except Exception as exc:  # a bug must not stop the worker; the jobs come back
            log.exception("worker.batch_failed", error=str(exc))
