"""What the embedder is right now: which worker it is, the model it serves (or why none
serves yet) and its queue. The lifecycle records each step of bring-up here; the
servicer (Embed, Info) and the heartbeat only read it."""

import os
import socket
from dataclasses import dataclass
from importlib import metadata

from google.protobuf.timestamp_pb2 import Timestamp

from photosearch.common.errors import Unavailable
from photosearch.common.logging import get_logger
from photosearch.events.v1 import events_pb2
from photosearch_embedder.heartbeat import heartbeat_message
from photosearch_embedder.prepare import PreparedModel
from photosearch_embedder.resolve import quantization_of
from photosearch_embedder.runtime_choice import RuntimeChoice
from photosearch_embedder.service import Embedder
from photosearch_embedder.worker import EmbedWorker

log = get_logger(__name__)


def package_version() -> str:
    try:
        return metadata.version("photosearch-embedder")
    except metadata.PackageNotFoundError:
        return "dev"


@dataclass(frozen=True)
class WorkerIdentity:
    """Who this process is in heartbeats, results and Info."""

    worker_id: str
    version: str
    started_at: Timestamp

    @classmethod
    def of_this_process(cls, worker_id: str = "") -> "WorkerIdentity":
        """`worker_id`, or hostname-pid (unique per replica); started now."""
        started_at = Timestamp()
        started_at.GetCurrentTime()
        worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        return cls(worker_id, package_version(), started_at)


@dataclass(frozen=True)
class ModelState:
    """The served model as Info reports it; the model's fields stay empty until one
    is ready, and `note` says why none is."""

    available: bool
    note: str
    quantization: str
    model_id: str = ""
    dim: int = 0
    device: str = ""
    loaded: bool = False
    local_dim: int = 0
    # The engines the graphs run in on this host (None until chosen).
    choice: RuntimeChoice | None = None


class EmbedderStatus:
    def __init__(
        self, identity: WorkerIdentity, *, batch_size: int, index_variants: list[str]
    ) -> None:
        self.identity = identity
        self.batch_size = batch_size
        self.index_variants = list(index_variants)
        self.problem = "the model is being prepared"  # why no model serves yet
        self.model: PreparedModel | None = None
        self.embedder: Embedder | None = None
        self.worker: EmbedWorker | None = None

    def ready_embedder(self) -> Embedder:
        """The embedder, or Unavailable saying why there is none yet."""
        if self.embedder is None:
            raise Unavailable(f"no model is ready yet: {self.problem}")
        return self.embedder

    def model_state(self) -> ModelState:
        note = self.model.note if self.model else self.problem
        quantization = quantization_of(self.model.files) if self.model else ""
        embedder = self.embedder
        if embedder is None:
            return ModelState(False, note, quantization)
        return ModelState(
            True,
            note,
            quantization,
            model_id=embedder.model_id,
            dim=embedder.dim,
            device=embedder.device,
            loaded=embedder.loaded,
            local_dim=embedder.local_dim,
            choice=embedder.manager.choice,
        )

    async def queue_depth(self) -> tuple[int, int] | None:
        """(jobs waiting, jobs in flight) of this model's queue; None before queue work
        started or while NATS is away."""
        if self.worker is None:
            return None
        try:
            return await self.worker.queue_depth()
        except Exception as exc:  # NATS away: the rest of Info still helps
            log.warning("info.queue_depth_failed", error=str(exc))
            return None

    def heartbeat(self) -> events_pb2.WorkerHeartbeat:
        """This worker's entry in the presence bucket (beats start once a model is ready)."""
        embedder = self.embedder
        assert embedder is not None
        fingerprint = embedder.manager.choice.fingerprint
        return heartbeat_message(
            worker_id=self.identity.worker_id,
            model_id=embedder.model_id,
            dim=embedder.dim,
            device=embedder.device,
            batch_size=self.batch_size,
            version=self.identity.version,
            started_at=self.identity.started_at,
            model_loaded=embedder.loaded,
            local=embedder.local_dim > 0,
            runtime=fingerprint.engine.name,
            runtime_rate=fingerprint.rate,
        )
