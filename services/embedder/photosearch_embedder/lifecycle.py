"""What the embedder runs beside its gRPC server: NATS (Infra), the model (prepared,
then loaded on demand), the queue worker and the heartbeat.

SERVING = NATS connected and the model's exported files ready. A model that cannot
be had keeps the service NOT_SERVING with one clear log line that says how to
provide it, and is looked for again periodically."""

import asyncio
import os
import socket
from importlib import metadata

from google.protobuf.timestamp_pb2 import Timestamp

from photosearch.common.infra import Infra
from photosearch.common.logging import get_logger
from photosearch.events.v1 import events_pb2
from photosearch_embedder.config import EmbedderSettings
from photosearch_embedder.heartbeat import Heartbeat, heartbeat_message
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.models import ModelUnavailable
from photosearch_embedder.prepare import PreparedModel, prepare_model
from photosearch_embedder.resolve import quantization_of
from photosearch_embedder.service import Embedder
from photosearch_embedder.source import ImageSource
from photosearch_embedder.worker import EmbedWorker, WorkerOptions

log = get_logger(__name__)
MODEL_RETRY_SECONDS = 30.0


def package_version() -> str:
    try:
        return metadata.version("photosearch-embedder")
    except metadata.PackageNotFoundError:
        return "dev"


class EmbedderLifecycle:
    def __init__(self, settings: EmbedderSettings, infra: Infra, source: ImageSource) -> None:
        self.settings = settings
        self.infra = infra
        self.source = source
        self.worker_id = settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.version = package_version()
        self.started_at = Timestamp()
        self.started_at.GetCurrentTime()
        self.model: PreparedModel | None = None
        self.problem = "the model is being prepared"
        self.embedder: Embedder | None = None
        self.worker: EmbedWorker | None = None
        self.heartbeat: Heartbeat | None = None
        self._bring_up: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # The model is prepared (maybe exported, which takes a while) even while NATS is
        # still away; queue work starts once both are there.
        if self._bring_up is None:
            self._bring_up = asyncio.create_task(self._run_bring_up(), name="embedder-bring-up")
        await self.infra.start()

    async def ready(self) -> bool:
        return self.infra.nats_ok() and self.worker is not None

    async def _run_bring_up(self) -> None:
        while self.model is None:
            try:
                self.model = await prepare_model(self.settings)
            except ModelUnavailable as exc:
                self.problem = str(exc)
                log.error("model.unavailable", model=self.settings.model, error=str(exc))
            except Exception as exc:
                self.problem = f"preparing the model failed: {exc}"
                log.exception("model.prepare_failed", model=self.settings.model)
            if self.model is None:
                await asyncio.sleep(MODEL_RETRY_SECONDS)
        settings = self.settings
        manager = ModelManager(
            self.model.files,
            device=settings.device,
            idle_grace=settings.model_idle_grace,
            batch_size=settings.batch_size,
            threads=settings.inference_threads,
        )
        manager.start()
        self.embedder = Embedder(manager, decode_threads=settings.decode_threads)
        log.info(
            "model.available",
            model_id=manager.model_id,
            dim=manager.dim,
            local_dim=manager.local_dim,
            device=manager.device,
            onnx=self.model.files.onnx,
            note=self.model.note,
        )
        self.problem = ""
        await self._start_queue_work()

    async def _start_queue_work(self) -> None:
        assert self.embedder is not None
        settings = self.settings
        options = WorkerOptions(
            worker_id=self.worker_id,
            batch_size=settings.batch_size,
            variants=tuple(settings.index_variants),
            ack_wait=settings.ack_wait_seconds,
            fetch_timeout=settings.fetch_timeout_seconds,
            pipeline=settings.pipeline_batches,
        )
        while True:
            if self.infra.js is None:  # start() is still retrying the connection
                await asyncio.sleep(0.5)
                continue
            try:
                js = self.infra.require_js()
                worker = EmbedWorker(js, self.embedder, self.source, options)
                await worker.start()
                heartbeat = Heartbeat(
                    js,
                    self.describe,
                    interval=settings.heartbeat_interval_seconds,
                    ttl=settings.heartbeat_ttl_seconds,
                    replicas=settings.nats_stream_replicas,
                )
                await heartbeat.start()
                self.worker, self.heartbeat = worker, heartbeat
                return
            except Exception as exc:  # NATS not reachable right now
                log.warning("worker.start_failed", error=str(exc))
                await asyncio.sleep(2.0)

    def describe(self) -> events_pb2.WorkerHeartbeat:
        assert self.embedder is not None
        manager = self.embedder.manager
        return heartbeat_message(
            worker_id=self.worker_id,
            model_id=manager.model_id,
            dim=manager.dim,
            device=manager.device,
            batch_size=self.settings.batch_size,
            version=self.version,
            started_at=self.started_at,
            model_loaded=manager.loaded,
            local=manager.local_dim > 0,
        )

    @property
    def quantization(self) -> str:
        return quantization_of(self.model.files) if self.model else ""

    async def stop(self) -> None:
        if self._bring_up is not None and not self._bring_up.done():
            self._bring_up.cancel()
            await asyncio.gather(self._bring_up, return_exceptions=True)
        if self.worker is not None:
            await self.worker.stop()
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if self.embedder is not None:
            await self.embedder.manager.close()
            self.embedder.close()
        await self.source.close()
        await self.infra.stop()
