"""What the embedder runs beside its gRPC server: NATS (Infra), the model (prepared,
then loaded on demand), the queue worker and the heartbeat. server.py makes every
part; this module only orders them: prepare the model, open it, start queue work once
NATS is there, and stop everything in reverse. Each step is recorded in the status.

SERVING = NATS connected and the model's exported files ready. A model that cannot
be had keeps the service NOT_SERVING with one clear log line that says how to
provide it, and is looked for again periodically."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from nats.js import JetStreamContext

from photosearch.common.infra import Infra
from photosearch.common.logging import get_logger
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.heartbeat import Heartbeat
from photosearch_embedder.models import ModelUnavailable
from photosearch_embedder.prepare import ModelRequest, PreparedModel, prepare_model
from photosearch_embedder.runtime_choice import RuntimeChoice, RuntimeUnavailable
from photosearch_embedder.service import Embedder
from photosearch_embedder.source import ImageSource
from photosearch_embedder.status import EmbedderStatus
from photosearch_embedder.worker import EmbedWorker

log = get_logger(__name__)
MODEL_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class EmbedderParts:
    """How server.py makes each part that can only exist once what it needs does: the
    model's files for the embedder, a JetStream connection for the worker and heartbeat."""

    # Blocking (it may time the runtimes for a while): run off the event loop.
    choose_runtime: Callable[[ModelFiles], RuntimeChoice]
    open_model: Callable[[ModelFiles, RuntimeChoice], Embedder]
    worker: Callable[[JetStreamContext, Embedder], EmbedWorker]
    heartbeat: Callable[[JetStreamContext], Heartbeat]


@dataclass
class EmbedderLifecycle:
    infra: Infra
    source: ImageSource
    status: EmbedderStatus
    request: ModelRequest
    parts: EmbedderParts
    _heartbeat: Heartbeat | None = field(default=None, init=False)
    _bring_up: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def worker_id(self) -> str:
        return self.status.identity.worker_id

    @property
    def model(self) -> PreparedModel | None:
        return self.status.model

    @property
    def worker(self) -> EmbedWorker | None:
        return self.status.worker

    async def start(self) -> None:
        # The model is prepared (maybe exported, which takes a while) even while NATS is
        # still away; queue work starts once both are there.
        if self._bring_up is None:
            self._bring_up = asyncio.create_task(self._run_bring_up(), name="embedder-bring-up")
        await self.infra.start()

    async def ready(self) -> bool:
        return self.infra.nats_ok() and self.status.worker is not None

    async def _run_bring_up(self) -> None:
        model, choice = await self._prepare()
        embedder = self.parts.open_model(model.files, choice)
        embedder.manager.start()
        self.status.embedder = embedder
        log.info(
            "model.available",
            model_id=embedder.model_id,
            dim=embedder.dim,
            local_dim=embedder.local_dim,
            device=embedder.device,
            onnx=model.files.onnx,
            runtime=choice.summary(),
            note=model.note,
        )
        self.status.problem = ""
        await self._start_queue_work(embedder)

    async def _prepare(self) -> tuple[PreparedModel, RuntimeChoice]:
        """The prepared model and the engines it runs in on this host, asked for again
        every MODEL_RETRY_SECONDS until they can be had (the status says why not)."""
        while True:
            try:
                self.status.model = model = await prepare_model(self.request)
                self.status.problem = "choosing the engines for this host (timed once, then cached)"
                choice = await asyncio.to_thread(self.parts.choose_runtime, model.files)
                return model, choice
            except ModelUnavailable as exc:
                self.status.problem = str(exc)
                log.error("model.unavailable", model=self.request.model, error=str(exc))
            except RuntimeUnavailable as exc:
                self.status.problem = str(exc)
                log.error("runtime.unavailable", error=str(exc))
            except Exception as exc:
                self.status.problem = f"preparing the model failed: {exc}"
                log.exception("model.prepare_failed", model=self.request.model)
            await asyncio.sleep(MODEL_RETRY_SECONDS)

    async def _start_queue_work(self, embedder: Embedder) -> None:
        while True:
            if self.infra.js is None:  # start() is still retrying the connection
                await asyncio.sleep(0.5)
                continue
            try:
                js = self.infra.require_js()
                worker = self.parts.worker(js, embedder)
                await worker.start()
                heartbeat = self.parts.heartbeat(js)
                await heartbeat.start()
                self.status.worker, self._heartbeat = worker, heartbeat
                return
            except Exception as exc:  # NATS not reachable right now
                log.warning("worker.start_failed", error=str(exc))
                await asyncio.sleep(2.0)

    async def stop(self) -> None:
        if self._bring_up is not None and not self._bring_up.done():
            self._bring_up.cancel()
            await asyncio.gather(self._bring_up, return_exceptions=True)
        if self.status.worker is not None:
            await self.status.worker.stop()
        if self._heartbeat is not None:
            await self._heartbeat.stop()
        if self.status.embedder is not None:
            await self.status.embedder.manager.close()
            self.status.embedder.close()
        await self.source.close()
        await self.infra.stop()
