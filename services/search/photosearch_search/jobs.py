"""The embed job queue (stream EMBED_JOBS, one subject and consumer per model)."""

import asyncio
from collections.abc import Sequence

from nats.js.errors import NotFoundError

from photosearch.common import subjects
from photosearch.common.errors import Unavailable
from photosearch.common.infra import Infra
from photosearch.common.nats import publish
from photosearch.events.v1 import events_pb2
from photosearch_search.domain import ImageRef

# Publishes in flight at once during a rebuild (each waits for JetStream's ack).
PUBLISH_CONCURRENCY = 64


def job_msg_id(model_id: str, image_id: str, attempt: str) -> str:
    """JetStream drops a re-publish with the same id within the stream's window."""
    return f"{subjects.model_key(model_id)}:{image_id}:{attempt}"


class EmbedJobQueue:
    def __init__(self, infra: Infra) -> None:
        self._infra = infra

    async def publish(self, model_id: str, refs: Sequence[ImageRef], attempt: str) -> None:
        """Queue one job per image; returns once JetStream stored them all."""
        js = self._infra.require_js()
        subject = subjects.embed_job_subject(model_id)
        gate = asyncio.Semaphore(PUBLISH_CONCURRENCY)

        async def one(ref: ImageRef) -> None:
            job = events_pb2.EmbedJob(image_id=ref.image_id, item_id=ref.item_id, model_id=model_id)
            async with gate:
                await publish(js, subject, job, msg_id=job_msg_id(model_id, ref.image_id, attempt))

        try:
            await asyncio.gather(*(one(ref) for ref in refs))
        except Exception as exc:
            raise Unavailable(f"could not queue embed jobs on NATS: {exc}") from exc

    async def depth(self, model_id: str) -> int:
        """Jobs waiting or being worked on: the consumer's pending + ack-pending, or the
        messages stored for the model's subject while no worker has ever consumed."""
        js = self._infra.require_js()
        try:
            info = await js.consumer_info(
                subjects.EMBED_JOBS_STREAM, subjects.embed_consumer_name(model_id)
            )
            return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        except NotFoundError:
            pass
        subject = subjects.embed_job_subject(model_id)
        stream = await js.stream_info(subjects.EMBED_JOBS_STREAM, subjects_filter=subject)
        return int((stream.state.subjects or {}).get(subject, 0))
