"""One batch of embed jobs, from fetched messages to settled jobs: parse, fetch the bytes
from catalog, embed (fingerprints, and the local descriptors of the whole photo as
decoded when the model has a local graph), publish the result, then settle. A photo
whose local pass fails is still published, without local descriptors (logged as
worker.local_failed): it stays findable, only not re-ranked.

Nothing is lost: a job is acked only after its EmbedCompleted (or EmbedFailed) is
stored in JetStream; a worker that dies leaves its jobs un-acked and JetStream
hands them to another after `ack_wait`. Nothing is doubled: a result's msg_id is
derived from the job's stream sequence, so a redelivered job's result is dropped
as a duplicate by JetStream."""

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import KW_ONLY, dataclass, field

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from photosearch.common import subjects
from photosearch.common.errors import InvalidArgument, NotFound, Unavailable
from photosearch.common.local import to_proto
from photosearch.common.logging import get_logger
from photosearch.common.nats import publish
from photosearch.events.v1 import events_pb2
from photosearch_embedder.metrics import EmbedderMetrics
from photosearch_embedder.service import Embedder, Fingerprints
from photosearch_embedder.source import ImageSource

log = get_logger(__name__)
MAX_BACKOFF = 60.0


def backoff(num_delivered: int) -> float:
    """Seconds before a job that hit a transient error is offered again: 2, 4, ... 60."""
    return float(min(MAX_BACKOFF, 2 ** min(max(num_delivered, 1), 6)))


@dataclass
class Job:
    msg: Msg
    job: events_pb2.EmbedJob
    sequence: int  # the job's stream sequence: the same on every redelivery

    def result_id(self, kind: str) -> str:
        return f"{kind}:{subjects.model_key(self.job.model_id)}:{self.job.image_id}:{self.sequence}"


@dataclass
class JobHandler:
    """Settles every job of a batch it is given; raises only on a bug."""

    js: JetStreamContext
    embedder: Embedder
    source: ImageSource
    _: KW_ONLY
    worker_id: str
    variants: tuple[str, ...]
    ack_wait: float
    metrics: EmbedderMetrics = field(default_factory=EmbedderMetrics)
    processed: int = field(default=0, init=False)  # jobs completed (EmbedCompleted stored)

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    async def process(self, msgs: list[Msg]) -> None:
        jobs = [job for msg in msgs if (job := await self._parse(msg)) is not None]
        if not jobs:
            return
        keepalive = asyncio.create_task(self._keep_alive(jobs))
        try:
            await self._process(jobs)
        finally:
            keepalive.cancel()
            await asyncio.gather(keepalive, return_exceptions=True)

    async def _parse(self, msg: Msg) -> Job | None:
        job = events_pb2.EmbedJob()
        try:
            job.ParseFromString(msg.data)
        except DecodeError:
            log.error("worker.bad_job", subject=msg.subject, size=len(msg.data))
            await self._reject(msg)
            return None
        if job.model_id != self.model_id or not job.image_id:
            log.error("worker.job_not_for_us", job_model=job.model_id, image_id=job.image_id)
            await self._reject(msg)
            return None
        if (msg.metadata.num_delivered or 1) > 1:
            self.metrics.redelivered.labels(self.model_id).inc()
        return Job(msg, job, msg.metadata.sequence.stream)

    async def _reject(self, msg: Msg) -> None:
        self.metrics.job_settled(self.model_id, "rejected")
        await msg.term()

    async def _keep_alive(self, jobs: list[Job]) -> None:
        """Tell JetStream a long batch is still being worked on, so it is not redelivered."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            for job in jobs:
                try:
                    await job.msg.in_progress()
                except Exception as exc:
                    log.debug("worker.in_progress_failed", error=str(exc))

    async def _process(self, jobs: list[Job]) -> None:
        fetched = await asyncio.gather(
            *(self.source.fetch(j.job.image_id) for j in jobs), return_exceptions=True
        )
        ready: list[tuple[Job, bytes]] = []
        for job, outcome in zip(jobs, fetched, strict=True):
            if isinstance(outcome, bytes):
                ready.append((job, outcome))
            else:
                await self._settle_unfetched(job, outcome)
        if not ready:
            return
        rotations = (0,) if self.embedder.local_dim else ()
        started = time.perf_counter()
        try:
            results = await self.embedder.embed(
                [d for _, d in ready], list(self.variants), rotations
            )
            self.metrics.batch_seconds.labels(self.model_id).observe(time.perf_counter() - started)
            self.metrics.batch_photos.labels(self.model_id).inc(len(ready))
        except Exception as exc:  # e.g. the model failed to load: retry later, elsewhere
            log.exception("worker.embed_failed", error=str(exc), jobs=len(ready))
            for job, _ in ready:
                await self._nak(job, str(exc))
            return
        for (job, _), result in zip(ready, results, strict=True):
            if result.error is not None:
                await self._fail(job, str(result.error))
            else:
                await self._complete(job, result)

    async def _settle_unfetched(self, job: Job, error: BaseException) -> None:
        if isinstance(error, NotFound):
            log.info("worker.image_gone", image_id=job.job.image_id, reason=str(error))
            self.metrics.job_settled(self.model_id, "gone")
            await self._settle(job.msg.ack(), job)
        elif isinstance(error, InvalidArgument):
            await self._fail(job, str(error))
        else:
            reason = str(error) if isinstance(error, Unavailable) else repr(error)
            await self._nak(job, reason)

    async def _complete(self, job: Job, result: Fingerprints) -> None:
        event = events_pb2.EmbedCompleted(
            image_id=job.job.image_id,
            item_id=job.job.item_id,
            model_id=self.model_id,
            worker_id=self.worker_id,
            embeddings=[
                events_pb2.Embedding(variant=k, values=v) for k, v in result.vectors.items()
            ],
        )
        if result.local:
            event.local.CopyFrom(to_proto(result.local[0]))
        elif result.local_error:
            log.warning("worker.local_failed", image_id=job.job.image_id, reason=result.local_error)
        if await self._publish(job, subjects.EMBED_COMPLETED, event, job.result_id("completed")):
            self.processed += 1
            self.metrics.job_settled(self.model_id, "completed")
            await self._settle(job.msg.ack(), job)

    async def _fail(self, job: Job, reason: str) -> None:
        log.warning("worker.image_failed", image_id=job.job.image_id, reason=reason)
        event = events_pb2.EmbedFailed(
            image_id=job.job.image_id,
            item_id=job.job.item_id,
            model_id=self.model_id,
            reason=reason,
            worker_id=self.worker_id,
        )
        if await self._publish(job, subjects.EMBED_FAILED, event, job.result_id("failed")):
            self.metrics.job_settled(self.model_id, "failed")
            await self._settle(job.msg.term(), job)

    async def _publish(self, job: Job, subject: str, event: Message, msg_id: str) -> bool:
        try:
            await publish(self.js, subject, event, msg_id=msg_id)
            return True
        except Exception as exc:  # NATS timeout / disconnect: offer the job again later
            await self._nak(job, f"publishing {subject} failed: {exc!r}")
            return False

    async def _nak(self, job: Job, reason: str) -> None:
        delay = backoff(job.msg.metadata.num_delivered)
        log.warning(
            "worker.retry_later", image_id=job.job.image_id, reason=reason, retry_in_s=delay
        )
        self.metrics.job_settled(self.model_id, "retried")
        await self._settle(job.msg.nak(delay=delay), job)

    async def _settle(self, action: Awaitable[None], job: Job) -> None:
        try:
            await action
        except Exception as exc:  # the job comes back after ack_wait; its result is a duplicate
            log.warning("worker.settle_failed", image_id=job.job.image_id, error=str(exc))
